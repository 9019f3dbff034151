// Pod-to-pod TCP throughput and ping latency, Sluice (vxlan and udp backends) side by side with
// the kernel's VXLAN wired as Flannel wires it, in one run on one underlay (see systems.ts).
//
//   node dist/bench/throughput.js [--seconds 10] [--repeat 3] [--systems sluice-vxlan,sluice-udp,kernel-vxlan]
//                                 [--results bench/RESULTS.md] [--no-write]
//
// Per repetition and system: ping -c 50 -i 0.01 pod1 → pod2 (idle), then one iperf3 TCP stream
// pod1 → pod2 for --seconds. The order of the systems rotates every repetition so no system always
// runs first or last. Reported: median throughput over the repetitions, p50/p99 over all ping
// replies, and the ratio to kernel VXLAN. Needs root, iproute2, ping and iperf3.
// Everything made (namespaces, daemons, servers) is removed on exit, error or SIGINT.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inNetns, run } from '../test/integration/helpers/exec.js';
import { createUnderlay, runPrefix, sweepStale } from '../test/integration/helpers/netns.js';
import { describe as describeExit } from '../test/integration/helpers/process.js';
import { Scope } from '../test/integration/helpers/scope.js';
import { iperf3Tcp, percentile, ping } from '../test/integration/helpers/traffic.js';
import { cpuBetween, sampleCpu } from './cpu.js';
import { type Run, type SystemResult, summarise, table, updateResults } from './results-md.js';
import { type BenchSystem, SYSTEM_KINDS, type SystemKind, buildSystem } from './systems.js';

const PREFIX = 'slbn-';
const PING_COUNT = 50;
const PING_INTERVAL_S = 0.01;
const WARMUP_SECONDS = 2;
const DEFAULT_RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));

interface Options {
  seconds: number;
  repeat: number;
  systems: SystemKind[];
  results: string;
  write: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '10' },
      repeat: { type: 'string', default: '3' },
      systems: { type: 'string', default: SYSTEM_KINDS.join(',') },
      results: { type: 'string', default: DEFAULT_RESULTS },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const int = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const systems = values.systems.split(',').map((s) => s.trim());
  for (const s of systems) {
    if (!(SYSTEM_KINDS as readonly string[]).includes(s)) throw new Error(`--systems: unknown system ${JSON.stringify(s)}; expected some of ${SYSTEM_KINDS.join(', ')}`);
  }
  return {
    seconds: int('seconds', values.seconds, 1, 600),
    repeat: int('repeat', values.repeat, 1, 100),
    systems: [...new Set(systems)] as SystemKind[],
    results: values.results,
    write: !values['no-write'],
  };
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
/** Set by a signal; from then on the signal handler owns cleanup and the exit. */
let interrupted = false;
/** /proc/loadavg when the run began: other work on the machine skews the numbers. */
let loadAtStart = '';

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  await run('iperf3', ['--version']);

  const scope = new Scope();
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: cleaning up`);
    abort.abort();
    void scope.close().finally(() => process.exit(130));
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  try {
    const stale = await sweepStale(PREFIX);
    if (stale.removed.length) log(`removed namespaces of dead earlier runs: ${stale.removed.join(', ')}`);
    if (stale.busy.length) throw new Error(`namespaces of an earlier run still hold processes: ${stale.busy.join(', ')}`);
    const names = runPrefix(PREFIX);
    const dir = mkdtempSync(join(tmpdir(), 'slbn-'));
    scope.defer(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));

    log('building the underlay and the systems');
    const underlay = await createUnderlay(scope, `${names}ul`);
    const systems: BenchSystem[] = [];
    for (const [i, kind] of opts.systems.entries()) systems.push(await buildSystem(scope, kind, i, names, underlay, dir));

    for (const s of systems) {
      const p = await ping(s.pods[0].netns, s.pods[1].ip, { count: 3, signal: abort.signal });
      if (p.received !== 3) throw new Error(`${s.kind}: pod1 → pod2 ping got ${p.received}/3 replies; not benchmarking a broken path`);
      log(`${s.kind}: warm-up (${WARMUP_SECONDS} s iperf3, discarded)`);
      await iperf3Tcp(scope, { serverNs: s.pods[1].netns, serverIp: s.pods[1].ip, clientNs: s.pods[0].netns, seconds: WARMUP_SECONDS, signal: abort.signal });
    }

    const clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    const results = new Map<SystemKind, SystemResult>(systems.map((s) => [s.kind, { kind: s.kind, runs: [], rtts: [] }]));
    for (let rep = 0; rep < opts.repeat; rep++) {
      const order = systems.map((_, i) => systems[(i + rep) % systems.length]);
      for (const s of order) {
        const r = await measure(scope, s, opts.seconds, clkTck, abort.signal);
        results.get(s.kind)!.runs.push(r.run);
        results.get(s.kind)!.rtts.push(...r.rtts);
        log(`rep ${rep + 1}/${opts.repeat} ${s.kind}: ${r.run.gbps.toFixed(2)} Gbit/s, ${r.run.retransmits} retransmits, ` +
          `ping p50 ${r.p50.toFixed(3)} ms` + (s.daemons.length ? `, daemons ${r.run.daemonCpu.map((c) => c.toFixed(0)).join('/')}% of a core` : ''));
      }
    }

    const summary = [...results.values()].map(summarise);
    const block = await report(opts, summary, underlay);
    process.stdout.write(`${block}\n`);
    if (opts.write) {
      updateResults(opts.results, block);
      log(`wrote ${opts.results}`);
    }
  } finally {
    if (!interrupted) {
      const errors = await scope.close();
      if (errors.length) process.exitCode = 1;
    }
  }
}

async function measure(scope: Scope, s: BenchSystem, seconds: number, clkTck: number, signal: AbortSignal) {
  const [p1, p2] = s.pods;
  const pg = await ping(p1.netns, p2.ip, { count: PING_COUNT, intervalS: PING_INTERVAL_S, signal });
  const pids = s.daemons.map((d) => d.pid);
  const before = sampleCpu(pids);
  const ip = await iperf3Tcp(scope, { serverNs: p2.netns, serverIp: p2.ip, clientNs: p1.netns, seconds, signal });
  const cpu = cpuBetween(before, sampleCpu(pids), clkTck);
  for (const d of s.daemons) {
    if (d.exit) throw new Error(`${s.kind}: ${d.label} ${describeExit(d.exit)} during the run\n${d.tail()}`);
  }
  const run: Run = {
    gbps: ip.bitsPerSecond / 1e9,
    retransmits: ip.retransmits,
    daemonCpu: cpu.procPercent,
    machineBusy: cpu.machineBusyPercent,
    pingLoss: pg.transmitted - pg.received,
  };
  return { run, rtts: pg.rttsMs, p50: percentile(pg.rttsMs, 50) };
}

/** The generated block of RESULTS.md: when, where, how, and the table. */
async function report(opts: Options, summary: ReturnType<typeof summarise>[], anyNetns: string): Promise<string> {
  const cmd = async (c: string, args: string[]) => (await run(c, args, { check: false })).stdout.trim();
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const iperf = (await cmd('iperf3', ['--version'])).split('\n')[0];
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const commit = await cmd('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  // Others may be editing the tree: say so when the daemon ran from uncommitted sources.
  const dirty = (await cmd('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'native', 'binding.gyp'])).split('\n').filter(Boolean).length;
  const cc = (await inNetns(anyNetns, 'sysctl', ['-n', 'net.ipv4.tcp_congestion_control'], { check: false })).stdout.trim();
  const loss = summary.filter((s) => s.pingLoss > 0).map((s) => `${s.kind} lost ${s.pingLoss}`);
  return [
    `- Date: ${await cmd('date', ['-u'])}`,
    `- Machine: ${availableParallelism()} CPUs (\`nproc\`: ${await cmd('nproc', [])}), ${model}, Linux ${release()}`,
    `- Load average before the run (1/5/15 min): ${loadAtStart}; at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    `- Software: Node ${process.version}, ${iperf}, Sluice ${commit || 'unknown commit'}${dirty ? ` + ${dirty} uncommitted file(s) under src/ native/` : ''}, TCP congestion control ${cc || 'unknown'}`,
    `- Command: \`node dist/bench/throughput.js ${process.argv.slice(2).join(' ')}\`` +
      ` (${opts.repeat} repetition(s) × ${opts.seconds} s per system, order rotated each repetition)`,
    `- Method: one iperf3 TCP stream pod on h1 → pod on h2 (receiver-side rate, median of the repetitions; retransmits` +
      ` from the sender's iperf3 JSON, median); \`ping -c ${PING_COUNT} -i ${PING_INTERVAL_S}\` before each stream,` +
      ` p50/p99 over all replies (${loss.length ? loss.join(', ') : 'no loss'}); daemon CPU from /proc/<pid>/stat` +
      ` during the stream (h1 = sender side, h2 = receiver side), machine CPU busy from /proc/stat.`,
    '',
    table(summary),
  ].join('\n');
}

main().catch((err: unknown) => {
  if (interrupted) return; // the signal handler exits once cleanup is done
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
