// The per-packet cost of the policy gate on cached flows (the fast path every
// packet of an established flow takes), with no policy vs 10,000 policies loaded,
// for a small and a large working set of flows.
//
//   node dist/bench/flow-cache.js [--seconds 2]
//
// Packets are prebuilt TCP segments (both directions), parsed per packet as the
// forwarder does; "parse only" is measured separately and subtracted, so the
// gate column is decide() alone: hash, LRU get, chain compare, counters, TCP state.

import { parseArgs } from 'node:util';
import { HEADROOM } from '../src/dataplane/packet-batch.js';
import { Verdict } from '../src/dataplane/policy-gate.js';
import { FlowState } from '../src/flow/flow-entry.js';
import { PolicyEnforcer } from '../src/flow/policy-enforcer.js';
import { Drop } from '../src/packet/drop.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';
import { FlowKey } from '../src/packet/flow-key.js';
import type { PolicySnapshot } from '../src/policy/snapshot.js';
import { endpoint } from '../test/unit/flow-fixtures.js';
import { TCP, tcp4 } from '../test/unit/packet-fixtures.js';
import { makeWorkload, type Workload } from './flow-workload.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
const SECONDS = Number(args.seconds);
const SLOT = 128;

function fmtIp(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

interface Case { flows: number; policies: number; parseNs: number; totalNs: number }

function run(w: Workload, snapshot: PolicySnapshot | undefined, flows: number): Case {
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
  const gate = new PolicyEnforcer({ mode: 'inline', timers: false, cache: { max: Math.max(1024, flows * 2) } });
  gate.setSnapshot(snapshot);
  // One miss per flow (its forward packet) creates the entry; then every flow is settled as
  // allowed (the workload's policies deny many), so the timed loops are all hits, both ways.
  const parser = new FlowKeyParser();
  const key = new FlowKey();
  for (let i = 0; i < pkts; i += 2) {
    parser.parse(buf, HEADROOM + i * SLOT, lens[i], key);
    gate.decide(key, parser, lens[i], from[i], to[i]);
  }
  for (const e of gate.flows()) e.state = FlowState.Allowed;

  const time = (withGate: boolean): number => {
    let ops = 0;
    const t0 = performance.now();
    let i = 0;
    while (true) {
      for (let k = 0; k < 4096; k++) {
        const off = HEADROOM + i * SLOT;
        if (parser.parse(buf, off, lens[i], key) !== Drop.None) throw new Error('bad packet');
        if (withGate && gate.decide(key, parser, lens[i], from[i], to[i]) !== Verdict.Allow) throw new Error('not a hit');
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
  if (gate.misses !== flows) throw new Error(`expected ${flows} misses, saw ${gate.misses}`);
  void gate.close();
  return { flows, policies: snapshot === undefined ? 0 : snapshot.policies.length, parseNs, totalNs };
}

const w = makeWorkload(100, 10, 100);
const cases: Case[] = [];
for (const flows of [1_000, 100_000]) {
  cases.push(run(w, undefined, flows));
  cases.push(run(w, w.snapshot, flows));
}
console.log('| cached flows | policies | parse ns/pkt | parse + decide ns/pkt | decide ns/pkt | decide Mpps (one core) |');
console.log('|---|---|---|---|---|---|');
for (const c of cases) {
  const gateNs = c.totalNs - c.parseNs;
  console.log(`| ${c.flows.toLocaleString('en-US')} | ${c.policies.toLocaleString('en-US')} | ${c.parseNs.toFixed(0)} | ${c.totalNs.toFixed(0)} | ${gateNs.toFixed(0)} | ${(1000 / gateNs).toFixed(2)} |`);
}
console.log('\n' + JSON.stringify(cases));
