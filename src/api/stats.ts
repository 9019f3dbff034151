// A read-only view of the daemon's counters, shared by the HTTP API's JSON and
// Prometheus routes. Counters live in the data path as plain numbers; they are
// only read here, at request time.
import { DROP_REASON_COUNT, dropName } from '../packet/drop.js';
import type { Forwarder } from '../dataplane/forwarder.js';
import type { Endpoint } from '../dataplane/endpoint.js';
import type { Peer } from '../overlay/peer-table.js';

export interface StatsSource {
  forwarder(): Forwarder | undefined;
  endpoints(): Iterable<Endpoint>;
  peers(): Iterable<Peer>;
  health(): { status: 'ok' | 'degraded' | 'starting'; reasons: string[] };
}

export interface DaemonStats {
  drops: Record<string, number>;
  underlay: { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number };
  endpoints: { name: string; ip: string; tun: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number }[];
  peers: { name: string; underlay: string; subnet: string }[];
}

export function collectStats(src: StatsSource): DaemonStats {
  const f = src.forwarder();
  const drops: Record<string, number> = {};
  for (let code = 1; code < DROP_REASON_COUNT; code++) drops[dropName(code)] = f ? f.drops.get(code) : 0;
  return {
    drops,
    underlay: {
      rxPackets: f?.udpRxPackets ?? 0, rxBytes: f?.udpRxBytes ?? 0,
      txPackets: f?.udpTx.sentPackets ?? 0, txBytes: f?.udpTx.sentBytes ?? 0,
    },
    endpoints: [...src.endpoints()].map((ep) => ({
      name: ep.key, ip: ep.record.ip, tun: ep.tunName,
      rxPackets: ep.rxPackets, rxBytes: ep.rxBytes, txPackets: ep.tx.sentPackets, txBytes: ep.tx.sentBytes,
    })),
    peers: [...src.peers()].map((p) => ({ name: p.name, underlay: `${p.record.publicIP}:${p.port}`, subnet: p.record.subnet })),
  };
}
