// Traffic between namespaces, for assertions and benchmarks: a hashed TCP transfer, ping with
// per-reply RTTs, and the statistics over them (percentile, median).
import { inNetns } from './exec.js';
import { Proc } from './process.js';
import type { Scope } from './scope.js';
import { TCP_TOOL_PATH } from './tcp-tool.js';

export interface Digest {
  bytes: number;
  sha256: string;
}

export interface TransferResult {
  sent: Digest;
  received: Digest;
  seconds: number;
}

/** Sends `bytes` random bytes over TCP from clientNs to serverIp:port (a receiver in serverNs). */
export async function tcpTransfer(scope: Scope, o: {
  serverNs: string; serverIp: string; clientNs: string; port: number; bytes: number; timeoutMs: number;
}): Promise<TransferResult> {
  const server = Proc.start(scope, process.execPath, [TCP_TOOL_PATH, 'recv', o.serverIp, String(o.port), String(o.timeoutMs)],
    { netns: o.serverNs, label: `tcp receiver ${o.serverIp}:${o.port}` });
  try {
    await server.waitFor(/^listening$/m, 10_000);
    const t0 = process.hrtime.bigint();
    const client = await inNetns(o.clientNs, process.execPath,
      [TCP_TOOL_PATH, 'send', o.serverIp, String(o.port), String(o.bytes), String(o.timeoutMs)], { timeoutMs: o.timeoutMs + 5000 });
    await server.wait(10_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (server.exit?.code !== 0) throw new Error(`${server.label} failed\n${server.tail()}`);
    return { sent: lastJson(client.stdout), received: lastJson(server.stdout), seconds };
  } finally {
    await server.stop();
  }
}

function lastJson(out: string): Digest {
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Digest;
}

export interface PingResult {
  transmitted: number;
  received: number;
  /** Round-trip times of the replies, ms, in arrival order. */
  rttsMs: number[];
}

export interface PingOptions {
  count: number;
  /** Seconds between requests (below 0.2 needs root). Default 0.2. */
  intervalS?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** `ping -c COUNT -i INTERVAL` from a namespace; loss is reported, not thrown. */
export async function ping(netns: string, dst: string, o: PingOptions): Promise<PingResult> {
  const r = await inNetns(netns, 'ping', ['-n', '-c', String(o.count), '-i', String(o.intervalS ?? 0.2), '-W', '1', dst],
    { timeoutMs: o.timeoutMs ?? 30_000, check: false, signal: o.signal });
  const rttsMs = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const sum = r.stdout.match(/(\d+) packets transmitted, (\d+) received/);
  if (!sum) throw new Error(`ping from ${netns} to ${dst}: unexpected output\n${r.stdout}${r.stderr}`);
  return { transmitted: Number(sum[1]), received: Number(sum[2]), rttsMs };
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
