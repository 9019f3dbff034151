// New-flow policy evaluation: inline (main thread) vs the piscina worker pool.
//
//   node dist/bench/policy-pool.js [--namespaces 100] [--pods 10] [--policies-per-ns 100]
//                                  [--seconds 2] [--threads 1] [--batch 64]
//
// A. The evaluator alone, batches of --batch random pod-to-pod flows (both sides local):
//    inline evaluateSync; the pool with 1 batch in flight (latency) and 4 in flight (throughput).
// B. End to end through PolicyEnforcer.decide(): batches of brand-new TCP flows (every
//    packet a miss), endBatch() after each; in pool mode the released packets are re-decided
//    as Forwarder.reinject would. Reported: new flows/s and request latency per batch.
// C. Revalidation after a policy change: 100,000 cached flows, time to re-evaluate them all.
// Prints a markdown table (for bench/RESULTS.md) and the raw numbers as JSON.

import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { HEADROOM } from '../src/dataplane/packet-batch.js';
import { Verdict } from '../src/dataplane/policy-gate.js';
import { PolicyEnforcer } from '../src/flow/policy-enforcer.js';
import { Drop } from '../src/packet/drop.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';
import { FlowKey } from '../src/packet/flow-key.js';
import { IpProto } from '../src/packet/proto.js';
import { HEADER_WORDS, newRequest, newResponse, Q_SIDES, REQUEST_WORDS, Side } from '../src/workers/batch-format.js';
import { InlineEvaluator } from '../src/workers/evaluator.js';
import { PolicyPool } from '../src/workers/policy-pool.js';
import { endpoint } from '../test/unit/flow-fixtures.js';
import { TCP, tcp4 } from '../test/unit/packet-fixtures.js';
import { makeWorkload, percentile, rng, type Workload } from './flow-workload.js';
import { median } from '../test/integration/helpers/traffic.js';

const { values: args } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '100' },
    pods: { type: 'string', default: '10' },
    'policies-per-ns': { type: 'string', default: '100' },
    seconds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1' },
    batch: { type: 'string', default: '64' },
  },
});
const SECONDS = Number(args.seconds);
const THREADS = Number(args.threads);
const BATCH = Number(args.batch);

interface Row { name: string; flowsPerSec: number; batchMedianMs?: number; batchP99Ms?: number; mainUsPerFlow?: number; note?: string }

function randomRequest(w: Workload, next: () => number, n: number): Int32Array {
  const req = newRequest(1, n);
  const k = new FlowKey();
  const ips = w.podIPs;
  for (let i = 0; i < n; i++) {
    const src = ips[Math.floor(next() * ips.length)], dst = ips[Math.floor(next() * ips.length)];
    const dport = next() < 0.5 ? 8000 + Math.floor(next() * 100) : 80;
    k.setV4(IpProto.TCP, src, dst, 10000 + Math.floor(next() * 50000), dport);
    const q = HEADER_WORDS + i * REQUEST_WORDS;
    k.writeTo(req, q);
    req[q + Q_SIDES] = Side.Egress | Side.Ingress;
  }
  return req;
}

function inlineEvaluator(w: Workload): Row {
  const ev = new InlineEvaluator();
  ev.setSnapshot(w.snapshot, 1);
  const next = rng(1);
  const reqs = Array.from({ length: 256 }, () => randomRequest(w, next, BATCH));
  const res = newResponse(1, BATCH);
  const lat: number[] = [];
  let flows = 0;
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < SECONDS * 1000; i++) {
    const s = performance.now();
    ev.evaluateSync(reqs[i & 255], res);
    lat.push(performance.now() - s);
    flows += BATCH;
  }
  const secs = (performance.now() - t0) / 1000;
  return { name: 'evaluator: inline (main thread)', flowsPerSec: flows / secs, batchMedianMs: median(lat), batchP99Ms: percentile(lat, 99) };
}

async function poolEvaluator(w: Workload, inFlight: number, empty = false): Promise<Row> {
  const pool = new PolicyPool({ threads: THREADS });
  try {
    pool.setSnapshot(empty ? undefined : w.snapshot, 1);
    const next = rng(2);
    await pool.evaluate(randomRequest(w, next, BATCH)); // warm up: workers loaded, snapshot delivered
    const lat: number[] = [];
    let flows = 0;
    const t0 = performance.now();
    const lane = async (): Promise<void> => {
      while (performance.now() - t0 < SECONDS * 1000) {
        const req = randomRequest(w, next, BATCH);
        const s = performance.now();
        await pool.evaluate(req);
        lat.push(performance.now() - s);
        flows += BATCH;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    const secs = (performance.now() - t0) / 1000;
    return {
      name: `evaluator: pool, ${THREADS} thread(s), ${inFlight} batch(es) in flight${empty ? ', no policy (round trip only)' : ''}`,
      flowsPerSec: flows / secs, batchMedianMs: median(lat), batchP99Ms: percentile(lat, 99),
      note: empty ? 'the cost of a task: hand-off, wake-up, transfer both ways' : '',
    };
  } finally {
    await pool.close();
  }
}

/** New TCP flows through decide(): every packet a miss. */
async function endToEnd(w: Workload, mode: 'pool' | 'inline'): Promise<Row> {
  // Two local endpoints per flow would need many Endpoint objects; the remote side is
  // enough to make every flow evaluated (ingress of a local pod selected by policies).
  const locals = Array.from(w.podIPs, (ip, i) => endpoint('bench', `p${i}`, `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`));
  const gate = new PolicyEnforcer({
    mode, pool: { threads: THREADS }, timers: false, cache: { max: 4_000_000 }, maxMissTasks: 8,
    held: { capacity: 8192 },
  });
  const parser = new FlowKeyParser();
  const key = new FlowKey();
  const buf = Buffer.alloc(HEADROOM + 2048);
  const tmpl = tcp4('10.0.0.1', '10.0.0.2', 1, 80, TCP.SYN);
  tmpl.copy(buf, HEADROOM);
  const len = tmpl.length;
  let released = 0;
  const rp = new FlowKeyParser(), rk = new FlowKey();
  gate.onRelease = (b, n, from, to) => {
    for (let i = 0; i < n; i++) {
      if (rp.parse(b.buf, b.offsets[i], b.lengths[i], rk) !== Drop.None) continue;
      released++;
      if (gate.decide(rk, rp, rp.ipLength, from[i], to[i]) !== Verdict.Allow) throw new Error('a released packet was not allowed');
    }
  };
  try {
    gate.setSnapshot(w.snapshot);
    const next = rng(3);
    const ips = w.podIPs;
    let port = 0;
    const batchOnce = (): void => {
      for (let i = 0; i < BATCH; i++) {
        const s = Math.floor(next() * ips.length), d = Math.floor(next() * ips.length);
        port++;
        buf.writeInt32BE(ips[s], HEADROOM + 12);
        buf.writeInt32BE(ips[d], HEADROOM + 16);
        buf.writeUInt16BE(1024 + (port % 60000), HEADROOM + 20);
        buf.writeUInt16BE(8000 + (Math.floor(port / 60000) % 100), HEADROOM + 22);
        parser.parse(buf, HEADROOM, len, key);
        gate.decide(key, parser, len, undefined, locals[d]);
      }
      gate.endBatch();
    };
    // Warm up (workers, snapshot, JIT).
    for (let i = 0; i < 20; i++) batchOnce();
    await gate.settled();
    const ev0 = gate.evaluated, un0 = gate.unselected, tasks0 = gate.missTasks, lat0 = gate.missLatencyTotalMs, shed0 = gate.shed;
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    while (performance.now() - t0 < SECONDS * 1000) {
      batchOnce();
      // Back to the event loop between batches, as the forwarder is. In pool mode wait
      // (idle, not spinning) while 4 requests are in flight, so busy time = main-thread CPU.
      if (mode === 'pool') {
        while (gate.stats().missTasksInFlight >= 4) await new Promise<void>((r) => setTimeout(r, 0));
        if (gate.stats().missTasksInFlight > 0) await new Promise<void>((r) => setImmediate(r));
      } else {
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    await gate.settled();
    const elu = performance.eventLoopUtilization(elu0);
    const secs = (performance.now() - t0) / 1000;
    const flows = gate.evaluated - ev0 + gate.unselected - un0;
    const tasks = gate.missTasks - tasks0;
    return {
      name: `end to end: PolicyEnforcer, ${mode}${mode === 'pool' ? `, ${THREADS} thread(s)` : ''}`,
      flowsPerSec: flows / secs,
      batchMedianMs: mode === 'pool' && tasks > 0 ? (gate.missLatencyTotalMs - lat0) / tasks : undefined,
      mainUsPerFlow: (elu.active * 1000) / flows,
      note: mode === 'pool'
        ? `mean request latency; ${released} held packets released and re-decided, shed ${gate.shed - shed0}`
        : 'verdict inside decide()',
    };
  } finally {
    await gate.close();
  }
}

/** C. Revalidation: `flows` cached flows, a new snapshot; time until every flow carries it. */
async function revalidation(w: Workload, mode: 'pool' | 'inline', flows: number): Promise<Row> {
  const locals = Array.from(w.podIPs, (ip, i) => endpoint('bench', `p${i}`, `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`));
  const gate = new PolicyEnforcer({ mode: 'inline', timers: false, cache: { max: flows * 2 } });
  const parser = new FlowKeyParser();
  const key = new FlowKey();
  const buf = Buffer.alloc(HEADROOM + 2048);
  const tmpl = tcp4('10.0.0.1', '10.0.0.2', 1, 80, TCP.SYN);
  tmpl.copy(buf, HEADROOM);
  try {
    gate.setSnapshot(w.snapshot);
    const ips = w.podIPs;
    for (let f = 0; f < flows; f++) {
      const s = f % ips.length, d = (f * 7 + 3) % ips.length;
      buf.writeInt32BE(ips[s], HEADROOM + 12);
      buf.writeInt32BE(ips[d], HEADROOM + 16);
      buf.writeUInt16BE(1024 + (f % 60000), HEADROOM + 20);
      buf.writeUInt16BE(8000 + (Math.floor(f / 60000) % 100), HEADROOM + 22);
      parser.parse(buf, HEADROOM, tmpl.length, key);
      gate.decide(key, parser, tmpl.length, undefined, locals[d]);
    }
  } finally {
    await gate.close();
  }
  // The same cache, revalidated by an enforcer of the mode under test: move the entries over.
  const reval = new PolicyEnforcer({ mode, pool: { threads: THREADS }, timers: false, cache: { max: flows * 2 } });
  try {
    reval.setSnapshot(w.snapshot);
    for (const e of gate.flows()) reval.cache.insert(e);
    if (mode === 'pool') await reval.revalidated(); // workers up and holding the snapshot
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    reval.setSnapshot(w.snapshot); // a new generation: every flow is stale
    await reval.revalidated();
    const ms = performance.now() - t0;
    const elu = performance.eventLoopUtilization(elu0);
    return {
      name: `revalidation of ${flows.toLocaleString('en-US')} cached flows, ${mode}`,
      flowsPerSec: (flows * 1000) / ms,
      mainUsPerFlow: (elu.active * 1000) / flows,
      note: `full pass ${ms.toFixed(0)} ms (busiest flows first)`,
    };
  } finally {
    await reval.close();
  }
}

async function main(): Promise<void> {
  const w = makeWorkload(Number(args.namespaces), Number(args.pods), Number(args['policies-per-ns']));
  const env = `${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} vCPU, Node ${process.version}`;
  console.error(`workload: ${w.podIPs.length} pods, ${w.policies} policies (compiled in ${w.compileMs.toFixed(0)} ms); ${env}`);
  const rows: Row[] = [];
  rows.push(inlineEvaluator(w));
  rows.push(await poolEvaluator(w, 1, true));
  rows.push(await poolEvaluator(w, 1));
  rows.push(await poolEvaluator(w, 4));
  rows.push(await endToEnd(w, 'inline'));
  rows.push(await endToEnd(w, 'pool'));
  rows.push(await revalidation(w, 'inline', 100_000));
  rows.push(await revalidation(w, 'pool', 100_000));
  const f = (n: number | undefined, d: number): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
  console.log(`Workload: ${w.podIPs.length} pods, ${w.policies} policies, batches of ${BATCH} new flows; ${env}.\n`);
  console.log('| path | new flows/s | per batch, median ms | per batch, p99 ms | main-thread µs per new flow | note |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${Math.round(r.flowsPerSec).toLocaleString('en-US')} | ${f(r.batchMedianMs, 3)} | ${f(r.batchP99Ms, 3)} | ${f(r.mainUsPerFlow, 2)} | ${r.note ?? ''} |`);
  }
  console.log('\n' + JSON.stringify(rows));
}

await main();
