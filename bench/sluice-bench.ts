// `sluice bench`: one run that measures Sluice (both backends) side by side with the kernel's
// VXLAN and with OpenVPN and tinc (no crypto) when installed, on one machine, one underlay.
//
//   per system: build a 2-host lab (sluice-bench-systems.ts), check pod 1 → pod 2 pings, warm up;
//   per repetition (system order rotated each time, so none always runs first or last):
//     ping (idle path) → iperf3 TCP 1 stream → TCP 4 streams → UDP 1400-byte datagrams at full speed;
//   report medians of the repetitions, ping p50/p99 over all replies, ratios to kernel-vxlan.
//
// Needs root (network namespaces), iproute2, ping and iperf3. Everything it creates is removed
// on exit, on error and on SIGINT/SIGTERM/SIGHUP.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../test/integration/helpers/exec.js';
import { createUnderlay, sweepStale } from '../test/integration/helpers/netns.js';
import { describe as describeExit } from '../test/integration/helpers/process.js';
import { Scope } from '../test/integration/helpers/scope.js';
import { percentile } from '../test/integration/helpers/traffic.js';
import { jsonReport, markdownTable, summarise, svgChart, updateResults, type SystemRuns, type SystemSummary } from './sluice-bench-report.js';
import { BENCH_SYSTEMS, DEFAULT_SYSTEMS, PREFIX, buildBenchSystem, unavailable, type BenchKind, type BenchSystem } from './sluice-bench-systems.js';
import { iperf3, pingUs } from './sluice-bench-traffic.js';

export const DEFAULT_RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const PING_COUNT = 200;
const PING_INTERVAL_S = 0.01;
const WARMUP_SECONDS = 2;

/** The measurements of a repetition, in the order they run. */
export const BENCH_TESTS = ['tcp1', 'tcp4', 'udp', 'ping'] as const;
export type BenchTest = (typeof BENCH_TESTS)[number];

export interface BenchOptions {
  seconds: number;
  repeat: number;
  systems: BenchKind[];
  /** Which measurements to run (default all). */
  tests?: BenchTest[];
  /** A built Sluice checkout for the sluice-vxlan-baseline system. */
  baseline?: string;
  /** SCHED_FIFO priority for every userspace forwarder; 0: normal scheduling. */
  realtime?: number;
  /** Where to write the SVG chart. */
  plot?: string;
  /** RESULTS.md to update; undefined: do not write. */
  results?: string;
  /** The command line, for the record. */
  command: string;
}

export interface BenchOutcome {
  rows: SystemSummary[];
  skipped: { system: BenchKind; reason: string }[];
  /** The RESULTS.md block: date, machine, method, table. */
  markdown: string;
  json: string;
}

/** Validates the numbers and names of the options; throws a TypeError naming the bad one. */
export function checkOptions(o: { seconds: string; repeat: string; systems: string; realtime?: string; tests?: string }):
  Pick<BenchOptions, 'seconds' | 'repeat' | 'systems' | 'realtime' | 'tests'> {
  const int = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new TypeError(`--${name}: expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const systems = o.systems.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of systems) {
    if (!(BENCH_SYSTEMS as readonly string[]).includes(s)) {
      throw new TypeError(`--systems: unknown system ${JSON.stringify(s)}; expected some of ${BENCH_SYSTEMS.join(', ')}`);
    }
  }
  if (systems.length === 0) throw new TypeError('--systems: name at least one system');
  const tests = (o.tests ?? BENCH_TESTS.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const t of tests) {
    if (!(BENCH_TESTS as readonly string[]).includes(t)) throw new TypeError(`--tests: unknown test ${JSON.stringify(t)}; expected some of ${BENCH_TESTS.join(', ')}`);
  }
  if (tests.length === 0) throw new TypeError('--tests: name at least one test');
  return {
    seconds: int('seconds', o.seconds, 1, 600), repeat: int('repeat', o.repeat, 1, 100), systems: [...new Set(systems)] as BenchKind[],
    realtime: int('realtime', o.realtime ?? '0', 0, 99), tests: [...new Set(tests)] as BenchTest[],
  };
}

export const defaultSystems = (): string => DEFAULT_SYSTEMS.join(',');

/** Runs the bench; `progress` gets one line per step. Cleans up everything it made, always. */
export async function runBench(o: BenchOptions, progress: (line: string) => void): Promise<BenchOutcome> {
  if (process.getuid?.() !== 0) throw new Error('sluice bench needs root (it builds network namespaces)');
  await run('iperf3', ['--version']);
  const scope = new Scope();
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: cleaning up`);
    abort.abort();
    void scope.close().finally(() => process.exit(130));
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onSignal);
  try {
    const stale = await sweepStale(PREFIX);
    if (stale.removed.length) progress(`removed stale namespaces: ${stale.removed.join(', ')}`);
    if (stale.busy.length) throw new Error(`namespaces of another bench run still hold processes: ${stale.busy.join(', ')}`);
    const dir = mkdtempSync(join(tmpdir(), 'slsb-'));
    scope.defer(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));

    const skipped: BenchOutcome['skipped'] = [];
    const kinds: BenchKind[] = [];
    for (const k of o.systems) {
      const why = await unavailable(k, { dir, baseline: o.baseline });
      if (why) {
        skipped.push({ system: k, reason: why });
        progress(`skipping ${k}: ${why}`);
      } else {
        kinds.push(k);
      }
    }
    if (kinds.length === 0) throw new Error('no system to measure');

    progress(`building the underlay and ${kinds.length} system(s): ${kinds.join(', ')}`);
    const underlay = await createUnderlay(scope, `${PREFIX}ul`);
    const systems: BenchSystem[] = [];
    for (const [i, kind] of kinds.entries()) {
      systems.push(await buildBenchSystem(scope, kind, i, underlay, { dir, baseline: o.baseline, realtime: o.realtime }));
      progress(`${kind}: up`);
    }
    const tests = new Set(o.tests ?? BENCH_TESTS);
    for (const s of systems) {
      const p = await pingUs(s, 3, 0.2, abort.signal);
      if (p.lost > 0) throw new Error(`${s.kind}: pod 1 → pod 2 ping lost ${p.lost}/3; not benchmarking a broken path`);
      if (tests.has('ping') && tests.size === 1) continue;
      progress(`${s.kind}: warm-up (${WARMUP_SECONDS} s TCP, discarded)`);
      await iperf3(scope, s, 'tcp1', WARMUP_SECONDS, abort.signal);
    }

    const runs = new Map<BenchKind, SystemRuns>(systems.map((s) => [s.kind, { kind: s.kind, tcp1: [], tcp4: [], udp: [], rtts: [], pingLost: 0 }]));
    for (let rep = 0; rep < o.repeat; rep++) {
      const order = systems.map((_, i) => systems[(i + rep) % systems.length]);
      for (const s of order) {
        const r = runs.get(s.kind)!;
        const said: string[] = [];
        if (tests.has('ping')) {
          const pg = await pingUs(s, PING_COUNT, PING_INTERVAL_S, abort.signal);
          r.rtts.push(...pg.rtts);
          r.pingLost += pg.lost;
          said.push(`ping p50 ${percentile(pg.rtts, 50).toFixed(0)} µs p99 ${percentile(pg.rtts, 99).toFixed(0)} µs`);
        }
        if (tests.has('tcp1')) {
          const t1 = await iperf3(scope, s, 'tcp1', o.seconds, abort.signal);
          r.tcp1.push(t1);
          said.push(`TCP ${(t1.bitsPerSecond / 1e9).toFixed(2)} Gbit/s (${t1.retransmits} retr)`);
        }
        if (tests.has('tcp4')) {
          const t4 = await iperf3(scope, s, 'tcp4', o.seconds, abort.signal);
          r.tcp4.push(t4);
          said.push(`4 streams ${(t4.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);
        }
        if (tests.has('udp')) {
          const u = await iperf3(scope, s, 'udp', o.seconds, abort.signal);
          r.udp.push(u);
          said.push(`UDP ${(u.packetsPerSecond / 1000).toFixed(0)} kpps (${u.lostPercent.toFixed(0)}% lost)`);
        }
        for (const p of s.procs) {
          if (p.exit) throw new Error(`${s.kind}: ${p.label} ${describeExit(p.exit)} during the run\n${p.tail()}`);
        }
        progress(`rep ${rep + 1}/${o.repeat} ${s.kind}: ${said.join(', ')}`);
      }
    }

    const rows = [...runs.values()].map(summarise);
    const markdown = await resultsBlock(o, rows, skipped);
    const outcome: BenchOutcome = {
      rows, skipped, markdown,
      json: jsonReport(rows, { skipped, seconds: o.seconds, repeat: o.repeat, date: new Date().toISOString() }),
    };
    if (o.plot) {
      writeFileSync(o.plot, svgChart(rows, `sluice bench — ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs, medians of ${o.repeat}`));
      progress(`wrote ${o.plot}`);
    }
    if (o.results) {
      updateResults(o.results, markdown);
      progress(`wrote ${o.results}`);
    }
    return outcome;
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
    if (!interrupted) {
      const errors = await scope.close();
      if (errors.length) process.exitCode = 1;
    }
  }
}

/** The generated block of RESULTS.md: when, where, what, how, and the table. */
async function resultsBlock(o: BenchOptions, rows: SystemSummary[], skipped: BenchOutcome['skipped']): Promise<string> {
  const cmd = async (c: string, args: string[]) => (await run(c, args, { check: false }).catch(() => ({ stdout: '' }))).stdout.trim();
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const iperf = (await cmd('iperf3', ['--version'])).split('\n')[0];
  const ovpn = (await cmd('sh', ['-c', 'openvpn --version 2>/dev/null | head -1'])).split(' ').slice(0, 2).join(' ');
  const tinc = (await cmd('sh', ['-c', 'tincd --version 2>/dev/null | head -1']));
  const commit = await cmd('git', ['-C', fileURLToPath(new URL('../..', import.meta.url)), 'rev-parse', '--short', 'HEAD']);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return [
    `- Date: ${new Date().toUTCString()}`,
    `- Machine: ${availableParallelism()} CPUs, ${model}, Linux ${release()}; load average at the end ${load}`,
    `- Software: Node ${process.version}, ${iperf}${ovpn ? `, ${ovpn}` : ''}${tinc ? `, ${tinc}` : ''}, Sluice ${commit || 'unknown commit'}`,
    `- Command: \`${o.command}\` (${o.repeat} repetitions × ${o.seconds} s per test, system order rotated each repetition` +
      `${o.tests && o.tests.length < BENCH_TESTS.length ? `; only ${o.tests.join(', ')}` : ''})`,
    '- Method: pod on h1 → pod on h2, every system on the same underlay bridge and tunnel MTU 1450. Throughput: receiver side,' +
      ' median of the repetitions. UDP: iperf3 `-u -b 0 -l 1400`, datagrams that arrived per second. Ping:' +
      ` \`ping -i ${PING_INTERVAL_S}\`, ${PING_COUNT} per repetition on the idle path, p50/p99 over all replies.` +
      ' CPU s/GB: busy time of all CPUs of the machine (/proc/stat) during the TCP 1 stream test, per GB received — it includes' +
      ' iperf3 and anything else running. Forwarder CPU: the daemons\' own time (% of one core). OpenVPN and tinc run' +
      ' without encryption or authentication.' +
      (o.realtime ? ` Every userspace forwarder runs SCHED_FIFO ${o.realtime}.` : ' Every process runs with normal scheduling.') +
      ' (×) = ratio to kernel-vxlan.',
    ...(skipped.length ? [`- Not measured: ${skipped.map((s) => `${s.system} (${s.reason})`).join('; ')}`] : []),
    '',
    markdownTable(rows),
  ].join('\n');
}
