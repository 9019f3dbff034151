// Helpers for tests of an etcd lab (`sluice lab up --store etcd`): its JSON, long-running processes
// in pod namespaces whose output is read line by line while they run (an echo flow, a paced
// transfer), a daemon's health, and the lab's etcd seen from the test.
import { type ChildProcess, spawn } from 'node:child_process';
import { CLI, inNetns, type LabJson, sluice, type RunResult } from './lab.js';

export interface EtcdLabJson extends LabJson {
  store: 'etcd';
  manifestsFile: string;
  etcd: { url: string; localUrl: string; netns?: string; pid?: number; log?: string };
  daemons: { host: string; pid: number; log: string }[];
}

/** A process in a namespace, its stdout delivered line by line; kill() ends it (it is ours). */
export class Streamer {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  #onLine: ((line: string) => void) | undefined;

  constructor(netns: string, script: string, onLine?: (line: string) => void) {
    this.#onLine = onLine;
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        this.#onLine?.(line);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Echoes whatever arrives, on every connection, until killed. */
export const ECHO_SERVER = (ip: string, port: number) => `
  import net from 'node:net';
  net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); s.on('error', () => {}); })
    .listen(${port}, '${ip}', () => process.stdout.write('listening\\n'));`;

/** One connection; a byte every `everyMs`; prints "E <epoch ms>" for every echo received. */
export const ECHO_CLIENT = (ip: string, port: number, everyMs: number) => `
  import net from 'node:net';
  const s = net.connect(${port}, '${ip}', () => { s.setNoDelay(true); process.stdout.write('connected\\n'); setInterval(() => s.write('x'), ${everyMs}); });
  s.on('data', () => process.stdout.write('E ' + Date.now() + '\\n'));
  s.on('error', (e) => { process.stdout.write('error ' + e.code + '\\n'); process.exit(1); });`;

/** Receives one connection; prints {bytes, sha256, maxGapMs} (the longest pause between arrivals). */
export const PACED_RECEIVER = (ip: string, port: number) => `
  import net from 'node:net'; import { createHash } from 'node:crypto';
  const srv = net.createServer((s) => { srv.close(); const h = createHash('sha256'); let bytes = 0, last = 0, maxGap = 0;
    s.on('data', (d) => { const now = Date.now(); if (last > 0) maxGap = Math.max(maxGap, now - last); last = now; h.update(d); bytes += d.length; });
    s.on('end', () => { process.stdout.write(JSON.stringify({ bytes, sha256: h.digest('hex'), maxGapMs: maxGap, endedAt: Date.now() }) + '\\n'); s.end(); });
  }).listen(${port}, '${ip}', () => process.stdout.write('listening\\n'));`;

/** Sends `chunks` chunks of `size` bytes (chunk i filled with i & 255), one every `everyMs`. */
export const PACED_SENDER = (ip: string, port: number, chunks: number, size: number, everyMs: number) => `
  import net from 'node:net';
  const s = net.connect(${port}, '${ip}', async () => {
    process.stdout.write('started ' + Date.now() + '\\n');
    for (let i = 0; i < ${chunks}; i++) {
      if (!s.write(Buffer.alloc(${size}, i & 255))) await new Promise((r) => s.once('drain', r));
      await new Promise((r) => setTimeout(r, ${everyMs}));
    }
    s.end(() => process.stdout.write('sent ' + Date.now() + '\\n'));
  });
  s.on('error', (e) => { process.stdout.write('error ' + e.code + '\\n'); process.exit(1); }); s.resume();`;

/** Opens a TCP connection; prints "ok" when it connects within `ms`, else "fail". */
export const TCP_PROBE = (ip: string, port: number, ms: number) => `
  import net from 'node:net';
  const s = net.connect(${port}, '${ip}'); const t = setTimeout(() => { process.stdout.write('fail'); process.exit(0); }, ${ms});
  s.on('connect', () => { clearTimeout(t); process.stdout.write('ok'); s.destroy(); });
  s.on('error', () => { clearTimeout(t); process.stdout.write('fail'); });`;

/** `sluice status --json` of the daemon in a host namespace. */
export async function daemonHealth(hostNetns: string): Promise<{ status: string; reasons: string[] }> {
  const r = await inNetns(hostNetns, [process.execPath, CLI, 'status', '--json'], 10_000);
  if (r.code !== 0) throw new Error(`sluice status in ${hostNetns}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { health: { status: string; reasons: string[] } }).health;
}

/** `sluice apply|delete|get ...` against the lab's etcd, from the underlay namespace as the lab suggests. */
export function sluiceStore(lab: EtcdLabJson, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  if (lab.etcd.netns === undefined) return sluice([...args, '--etcd', lab.etcd.url], timeoutMs);
  return inNetns(lab.etcd.netns, [process.execPath, CLI, ...args, '--etcd', lab.etcd.url], timeoutMs);
}

export interface HostLease {
  name: string;
  publicIP: string;
  subnet: string;
  key: string;
  lease: { id: string; ttlSeconds: number } | null;
}

export async function getHosts(lab: EtcdLabJson): Promise<HostLease[]> {
  const r = await sluiceStore(lab, ['get', 'hosts', '--json']);
  if (r.code !== 0) throw new Error(`sluice get hosts: ${r.stderr}`);
  return (JSON.parse(r.stdout) as HostLease[]).sort((a, b) => a.name.localeCompare(b.name));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 50 ms; throws with `what` after `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
