// Traffic for `sluice bench`, pod 1 → pod 2 of a system: iperf3 TCP with 1 or 4 streams, iperf3
// UDP at full speed with 1400-byte payloads, and ping. Each measurement also samples CPU: the
// forwarding processes' own time and the whole machine's busy time (for CPU seconds per GB,
// which is comparable between userspace tunnels and the kernel's VXLAN).
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { cpuBetween, sampleCpu } from './cpu.js';
import { inNetns } from '../test/integration/helpers/exec.js';
import { Proc } from '../test/integration/helpers/process.js';
import type { Scope } from '../test/integration/helpers/scope.js';
import { ping } from '../test/integration/helpers/traffic.js';
import type { BenchSystem } from './sluice-bench-systems.js';

export type IperfMode = 'tcp1' | 'tcp4' | 'udp';

export interface IperfResult {
  /** Receiver-side payload rate, bit/s. */
  bitsPerSecond: number;
  /** UDP: datagrams per second that arrived. */
  packetsPerSecond: number;
  /** UDP: percent of the datagrams sent that were lost. */
  lostPercent: number;
  retransmits: number;
  /** Machine CPU seconds (all CPUs, busy) per GB received, during the run. */
  cpuSecondsPerGB: number;
  /** Per forwarding process (h1, h2), percent of one core. */
  procCpu: number[];
}

const CPUS = availableParallelism();
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const UDP_PAYLOAD = 1400;

/** One iperf3 run from pods[0] to pods[1] with a one-off server, CPU sampled around it. */
export async function iperf3(scope: Scope, s: BenchSystem, mode: IperfMode, seconds: number, signal?: AbortSignal): Promise<IperfResult> {
  const [client, server] = s.pods;
  const port = '5201';
  const srv = Proc.start(scope, 'iperf3', ['-s', '-1', '--forceflush', '-B', server.ip, '-p', port],
    { netns: server.netns, label: `iperf3 server ${server.netns}` });
  try {
    await srv.waitFor(/Server listening/, 10_000);
    const args = ['-c', server.ip, '-p', port, '-t', String(seconds), '-J'];
    if (mode === 'tcp4') args.push('-P', '4');
    if (mode === 'udp') args.push('-u', '-b', '0', '-l', String(UDP_PAYLOAD));
    const pids = s.procs.map((p) => p.pid);
    const before = sampleCpu(pids);
    const r = await inNetns(client.netns, 'iperf3', args, { timeoutMs: (seconds + 30) * 1000, check: false, signal });
    const after = sampleCpu(pids);
    const cpu = cpuBetween(before, after, CLK_TCK);
    let j: IperfJson;
    try {
      j = JSON.parse(r.stdout) as IperfJson;
    } catch {
      throw new Error(`${s.kind}: iperf3 ${mode} printed no JSON (exit ${r.code})\n${r.stderr}${r.stdout.slice(0, 2000)}`);
    }
    if (j.error) throw new Error(`${s.kind}: iperf3 ${mode}: ${j.error}`);
    const recv = j.end?.sum_received, sent = j.end?.sum_sent;
    if (!recv || !sent) throw new Error(`${s.kind}: iperf3 ${mode} JSON lacks end.sum_received/sum_sent`);
    const wall = Number(after.atNs - before.atNs) / 1e9;
    const busyCpuSeconds = (cpu.machineBusyPercent / 100) * wall * CPUS;
    const gb = recv.bytes / 1e9;
    const delivered = mode === 'udp' ? (recv.packets ?? 0) - (recv.lost_packets ?? 0) : 0;
    return {
      bitsPerSecond: recv.bits_per_second,
      packetsPerSecond: mode === 'udp' ? delivered / recv.seconds : 0,
      lostPercent: mode === 'udp' ? recv.lost_percent ?? 0 : 0,
      retransmits: sent.retransmits ?? 0,
      cpuSecondsPerGB: gb > 0 ? busyCpuSeconds / gb : NaN,
      procCpu: cpu.procPercent,
    };
  } finally {
    await srv.stop();
  }
}

/** Ping RTTs in µs (`count` requests, `intervalS` apart). Lost replies are simply missing. */
export async function pingUs(s: BenchSystem, count: number, intervalS: number, signal?: AbortSignal): Promise<{ rtts: number[]; lost: number }> {
  const r = await ping(s.pods[0].netns, s.pods[1].ip, { count, intervalS, signal, timeoutMs: (count * intervalS + 10) * 1000 });
  return { rtts: r.rttsMs.map((ms) => ms * 1000), lost: r.transmitted - r.received };
}

interface IperfSum {
  bits_per_second: number;
  bytes: number;
  seconds: number;
  retransmits?: number;
  packets?: number;
  lost_packets?: number;
  lost_percent?: number;
}

interface IperfJson {
  error?: string;
  end?: { sum_sent?: IperfSum; sum_received?: IperfSum };
}
