// The per-packet cost of the policy gate on cached flows (the fast path every
// packet of an established flow takes), with no policy vs 10,000 policies loaded,
// for a small and a large working set of flows.
//
//   node dist/bench/flow-cache.js [--seconds 2] [--compare <dist root>] [--order seq|random]
//
// Packets are prebuilt TCP segments (both directions), parsed per packet as the
// forwarder does; "parse only" is measured separately and subtracted, so the
// gate column is decide() alone: hash, bucket walk, key compare, reference bit,
// counters, TCP state. Every packet is a hit (allowed or denied: both count and
// refresh the flow); every flow is seen both ways before timing starts. --order:
// packets in flow order (seq: flows were created in that order, so memory is
// walked sequentially) or in a fixed random order (random, the default: what a
// busy host sees).
//
// --compare runs each case also with the PolicyEnforcer of another compiled tree
// (e.g. a worktree of an older commit, /tmp/flow-old/dist), alternating, and
// prints both side by side with the ratio.

import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { HEADROOM } from '../src/dataplane/packet-batch.js';
import { Verdict } from '../src/dataplane/policy-gate.js';
import * as thisTree from '../src/flow/policy-enforcer.js';
import { Drop } from '../src/packet/drop.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';
import { FlowKey } from '../src/packet/flow-key.js';
import type { PolicySnapshot } from '../src/policy/snapshot.js';
import { endpoint } from '../test/unit/flow-fixtures.js';
import { TCP, tcp4 } from '../test/unit/packet-fixtures.js';
import { makeWorkload, rng, type Workload } from './flow-workload.js';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, compare: { type: 'string' }, order: { type: 'string', default: 'random' } },
});
if (args.order !== 'seq' && args.order !== 'random') throw new TypeError(`--order must be seq or random, got ${args.order}`);
const SECONDS = Number(args.seconds);
type EnforcerClass = typeof thisTree.PolicyEnforcer;
const other: EnforcerClass | undefined = args.compare === undefined ? undefined
  : ((await import(pathToFileURL(join(resolve(args.compare), 'src/flow/policy-enforcer.js')).href)) as typeof thisTree).PolicyEnforcer;
const SLOT = 128;

function fmtIp(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

interface Case { impl: string; flows: number; policies: number; parseNs: number; totalNs: number }

function run(Enforcer: EnforcerClass, impl: string, w: Workload, snapshot: PolicySnapshot | undefined, flows: number): Case {
  const ips = w.podIPs;
  const locals = Array.from(ips, (ip, i) => endpoint('bench', `p${i}`, fmtIp(ip)));
  // Packets: flow f = pod (f % n) -> pod ((f * 7 + 1) % n), port by f; a data segment each way.
  const n = ips.length;
  const pkts = 2 * flows;
  const buf = Buffer.alloc(pkts * SLOT + HEADROOM);
  const lens = new Int32Array(pkts);
  const from: (ReturnType<typeof endpoint> | undefined)[] = new Array(pkts);
  const to: (ReturnType<typeof endpoint> | undefined)[] = new Array(pkts);
  for (let f = 0; f < flows; f++) {
    const s = f % n, d = (f * 7 + 1) % n;
    const sport = 1024 + (f % 60000), dport = 8000 + (Math.floor(f / 60000) % 100);
    const fwd = tcp4(fmtIp(ips[s]), fmtIp(ips[d]), sport, dport, TCP.ACK, Buffer.alloc(40));
    const rev = tcp4(fmtIp(ips[d]), fmtIp(ips[s]), dport, sport, TCP.ACK, Buffer.alloc(20));
    fwd.copy(buf, HEADROOM + 2 * f * SLOT);
    rev.copy(buf, HEADROOM + (2 * f + 1) * SLOT);
    lens[2 * f] = fwd.length;
    lens[2 * f + 1] = rev.length;
    // Remote source, local destination: this host checks the destination's ingress.
    from[2 * f] = undefined; to[2 * f] = locals[d];
    from[2 * f + 1] = locals[d]; to[2 * f + 1] = undefined;
  }
  const gate = new Enforcer({ mode: 'inline', timers: false, cache: { max: Math.max(1024, flows * 2) } });
  gate.setSnapshot(snapshot);
  // Every packet once, both ways: the forward packet creates the flow; the reply hits it if
  // allowed, or (denied: a flow of its own) creates the reverse flow. Then all are hits.
  const parser = new FlowKeyParser();
  const key = new FlowKey();
  for (let i = 0; i < pkts; i++) {
    parser.parse(buf, HEADROOM + i * SLOT, lens[i], key);
    gate.decide(key, parser, lens[i], from[i], to[i]);
  }
  const misses = gate.misses;

  // The order packets are offered in (the same for parse-only and parse + decide).
  const order = new Int32Array(pkts);
  for (let i = 0; i < pkts; i++) order[i] = i;
  if (args.order === 'random') {
    const next = rng(flows);
    for (let i = pkts - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      const t = order[i]; order[i] = order[j]; order[j] = t;
    }
  }
  const time = (withGate: boolean): number => {
    let ops = 0;
    const t0 = performance.now();
    let i = 0;
    while (true) {
      for (let k = 0; k < 4096; k++) {
        const p = order[i];
        if (parser.parse(buf, HEADROOM + p * SLOT, lens[p], key) !== Drop.None) throw new Error('bad packet');
        if (withGate && gate.decide(key, parser, lens[p], from[p], to[p]) === Verdict.Held) throw new Error('held');
        if (++i === pkts) i = 0;
      }
      ops += 4096;
      if ((ops & 0xffff) === 0) gate.endBatch();
      if (performance.now() - t0 > SECONDS * 1000) break;
    }
    return ((performance.now() - t0) * 1e6) / ops;
  };
  time(true); // warm up
  const parseNs = time(false);
  const totalNs = time(true);
  if (gate.misses !== misses) throw new Error(`expected only hits, saw ${gate.misses - misses} misses`);
  void gate.close();
  return { impl, flows, policies: snapshot === undefined ? 0 : snapshot.policies.length, parseNs, totalNs };
}

const w = makeWorkload(100, 10, 100);
const cases: [Case, Case | undefined][] = [];
for (const flows of [1_000, 100_000, 1_000_000]) {
  for (const snap of [undefined, w.snapshot]) {
    // Alternate which implementation goes first, so drift of the machine does not favour one.
    const otherFirst = other !== undefined && cases.length % 2 === 1;
    const b0 = otherFirst ? run(other, args.compare!, w, snap, flows) : undefined;
    const a = run(thisTree.PolicyEnforcer, 'this tree', w, snap, flows);
    const b = other === undefined ? undefined : b0 ?? run(other, args.compare!, w, snap, flows);
    cases.push([a, b]);
  }
}
const gateNs = (c: Case): number => c.totalNs - c.parseNs;
if (other === undefined) {
  console.log('| cached flows | policies | parse ns/pkt | parse + decide ns/pkt | decide ns/pkt | decide Mpps (one core) |');
  console.log('|---|---|---|---|---|---|');
  for (const [c] of cases) {
    console.log(`| ${c.flows.toLocaleString('en-US')} | ${c.policies.toLocaleString('en-US')} | ${c.parseNs.toFixed(0)} | ${c.totalNs.toFixed(0)} | ${gateNs(c).toFixed(0)} | ${(1000 / gateNs(c)).toFixed(2)} |`);
  }
} else {
  console.log(`| cached flows | policies | decide ns/pkt, ${args.compare} | decide ns/pkt, this tree | this / other |`);
  console.log('|---|---|---|---|---|');
  for (const [a, b] of cases) {
    console.log(`| ${a.flows.toLocaleString('en-US')} | ${a.policies.toLocaleString('en-US')} | ${gateNs(b!).toFixed(0)} | ${gateNs(a).toFixed(0)} | ${(gateNs(a) / gateNs(b!)).toFixed(2)} |`);
  }
}
console.log('\n' + JSON.stringify(cases.flat().filter((c) => c !== undefined)));
