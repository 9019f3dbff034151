// A read-only view of the daemon's counters, shared by the HTTP API's JSON and
// Prometheus routes. Counters live in the data path as plain numbers; they are
// only read here, at request time.
import { DROP_REASON_COUNT, dropName } from '../packet/drop.js';
import type { Forwarder } from '../dataplane/forwarder.js';
import type { Endpoint } from '../dataplane/endpoint.js';
import type { EnforcerStats } from '../flow/policy-enforcer.js';
import type { FlowRecord } from '../flow/flow-log.js';
import type { TraceQuery, TraceResult } from '../daemon/trace.js';
import type { FastPathStats, OffloadStats } from '../native/binding.js';
import type { Metric } from 'prom-client';

export interface PolicySummary { id: string; kind: string; namespace?: string; name: string; order?: number; types: string[] }

export interface StatsSource {
  forwarder(): Forwarder | undefined;
  endpoints(): Iterable<Endpoint>;
  /** The peers with their traffic, JS pipeline and native fast path together. */
  peers(): PeerStats[];
  health(): { status: 'ok' | 'degraded' | 'starting'; reasons: string[] };
  policyStats(): EnforcerStats | undefined;
  /** Cached flows, newest verdicts as the cache holds them; at most `limit`. */
  flowRecords(denyOnly: boolean, limit: number): FlowRecord[];
  policies(): PolicySummary[];
  trace(q: TraceQuery): TraceResult;
  /** The cluster store's own state (etcd reachable or not; a file store is always ok). */
  storeHealth(): { status: 'ok' | 'degraded'; reasons: string[] };
  /** The native data path's counters (absent before start). */
  datapath(): DatapathStats | undefined;
  /** Metrics the source observes itself (histograms), registered with the API's registry. */
  metrics(): Metric[];
}

export interface DatapathStats {
  /** Data path threads (TUN queues per endpoint). */
  threads: number;
  /** µs the native threads busy-poll after a packet (0: off). */
  busyPollUs: number;
  /** Offloads in use (the kernel may have refused some that were asked for), and why not. */
  offloads: { tun: boolean; gso: boolean; gro: boolean; errors: string[] };
  offloadCounters: OffloadStats;
  /** null: the native fast path is off. */
  fastPath: FastPathStats | null;
}

export interface PeerStats {
  name: string; underlay: string; subnet: string;
  rxPackets: number; rxBytes: number; txPackets: number; txBytes: number;
}

export interface DaemonStats {
  drops: Record<string, number>;
  underlay: { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number };
  endpoints: { name: string; ip: string; tun: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number }[];
  peers: PeerStats[];
  policy?: EnforcerStats;
  datapath?: DatapathStats;
  store: { status: 'ok' | 'degraded'; reasons: string[] };
  /** The daemon process's memory (bytes). */
  memory: { rss: number; heapUsed: number; external: number };
}

export function collectStats(src: StatsSource): DaemonStats {
  const f = src.forwarder();
  const drops: Record<string, number> = {};
  for (let code = 1; code < DROP_REASON_COUNT; code++) drops[dropName(code)] = f ? f.drops.get(code) : 0;
  // Drops inside the policy gate, while a new flow waits for its verdict (the forwarder never sees them).
  const p = src.policyStats();
  drops.PolicyHeldDenied = p?.held.dropped ?? 0;
  drops.PolicyHeldQueueFull = p ? p.held.flowFull + p.held.queueFull + p.held.tooBig : 0;
  drops.PolicyOverload = p?.shed ?? 0;
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
    peers: src.peers(),
    policy: p,
    datapath: src.datapath(),
    store: src.storeHealth(),
    memory: (({ rss, heapUsed, external }) => ({ rss, heapUsed, external }))(process.memoryUsage()),
  };
}
