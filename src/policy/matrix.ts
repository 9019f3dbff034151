// Reachability matrix: every ordered pair of pod endpoints x every probe (protocol/port),
// decided by the same evaluate() the datapath uses. Like the Kubernetes e2e truth tables:
// rows are sources, columns destinations, '.' allowed, 'X' blocked.

import { evaluate } from './evaluator.js';
import { hasPorts, parseProtocol, protocolName } from './protocols.js';
import type { PolicySnapshot } from './snapshot.js';

export interface Probe {
  protocol: number;
  port: number;
}

export interface MatrixCell {
  from: string;
  to: string;
  protocol: string;
  port: number;
  allowed: boolean;
}

/** Parses "TCP/80,TCP/81,UDP/80"; throws Error naming the bad entry. */
export function parseProbes(text: string): Probe[] {
  const out: Probe[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    const m = /^([A-Za-z0-9]+)\/([0-9]+)$/.exec(item);
    const protocol = m ? parseProtocol(m[1]) : undefined;
    const port = m ? Number(m[2]) : NaN;
    if (!m || protocol === undefined || !hasPorts(protocol) || port < 1 || port > 65535) {
      throw new Error(`expected PROTOCOL/PORT with protocol TCP, UDP, SCTP or UDPLite and port 1-65535 (e.g. TCP/80), got ${JSON.stringify(item)}`);
    }
    out.push({ protocol, port });
  }
  return out;
}

export function probeName(p: Probe): string {
  return `${protocolName(p.protocol)}/${p.port}`;
}

/** Cells for every (probe, from, to) over the snapshot's endpoints (ordered by ns/pod). */
export function reachability(s: PolicySnapshot, probes: readonly Probe[], srcPort = 49152): MatrixCell[] {
  const cells: MatrixCell[] = [];
  for (const probe of probes) {
    for (const from of s.endpoints) {
      for (const to of s.endpoints) {
        const v = evaluate(s, { src: from.ips[0], dst: to.ips[0], protocol: probe.protocol, srcPort, dstPort: probe.port });
        cells.push({ from: from.key, to: to.key, protocol: protocolName(probe.protocol), port: probe.port, allowed: v.allowed });
      }
    }
  }
  return cells;
}

/** Renders one table per probe. */
export function formatMatrix(s: PolicySnapshot, cells: readonly MatrixCell[]): string {
  const names = s.endpoints.map((e) => e.key);
  const width = Math.max(3, ...names.map((n) => n.length));
  const pad = (t: string): string => t.padEnd(width);
  const byProbe = new Map<string, Map<string, boolean>>();
  for (const c of cells) {
    const k = `${c.protocol}/${c.port}`;
    let m = byProbe.get(k);
    if (!m) byProbe.set(k, (m = new Map()));
    m.set(`${c.from}\u0000${c.to}`, c.allowed);
  }
  const out: string[] = [];
  for (const [probe, m] of byProbe) {
    if (out.length > 0) out.push('');
    out.push(`${probe}  (rows: from, columns: to; '.' allowed, 'X' blocked)`);
    out.push([pad(''), ...names.map(pad)].join(' ').trimEnd());
    for (const from of names) {
      out.push([pad(from), ...names.map((to) => pad(m.get(`${from}\u0000${to}`) ? '.' : 'X'))].join(' ').trimEnd());
    }
  }
  return out.join('\n') + '\n';
}
