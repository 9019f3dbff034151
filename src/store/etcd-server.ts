// A local single-member etcd server (Debian's etcd-server package, v3.4): what the tests and the
// lab run when no cluster etcd is given. Started on loopback (or another local address) with ports
// and a data directory of the caller's choosing, stopped by its own PID only, and restartable on the
// same data directory (to test a store outage).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface EtcdServerOptions {
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Member name (default "sluice"). */
  name?: string;
  /** etcd binary (default $SLUICE_ETCD, else /usr/bin/etcd, else `etcd` on PATH). */
  binary?: string;
  /** Where etcd's log goes (appended); default `<dataDir>.log`. */
  logPath?: string;
  /** How long to wait for /health to say true (default 15 s). */
  readyTimeoutMs?: number;
  /**
   * Let etcd outlive this process (`lab up` starts it, `lab down` stops it by the PID it recorded):
   * own process group, not waited for. Default false: it is this process's child.
   */
  detached?: boolean;
}

export function etcdBinary(): string {
  const env = process.env.SLUICE_ETCD;
  if (env !== undefined && env !== '') return env;
  return existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : 'etcd';
}

/** True when an etcd binary can be found (tests skip themselves otherwise). */
export function etcdAvailable(): boolean {
  const bin = etcdBinary();
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(`${d}/${bin}`));
}

/** A TCP port that was free on `host` a moment ago (the kernel picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

export class EtcdServer {
  readonly options: Required<Omit<EtcdServerOptions, 'binary'>> & { binary: string };
  readonly url: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #exitInfo: string | undefined;

  /** Starts etcd and resolves once it reports healthy; rejects (with its log path) if it exits first. */
  static async start(o: EtcdServerOptions): Promise<EtcdServer> {
    const s = new EtcdServer(o);
    await s.restart();
    return s;
  }

  private constructor(o: EtcdServerOptions) {
    const host = o.host ?? '127.0.0.1';
    this.options = {
      dataDir: o.dataDir, clientPort: o.clientPort, peerPort: o.peerPort, host, name: o.name ?? 'sluice',
      binary: o.binary ?? etcdBinary(), logPath: o.logPath ?? `${o.dataDir}.log`, readyTimeoutMs: o.readyTimeoutMs ?? 15_000,
      detached: o.detached ?? false,
    };
    this.url = `http://${host}:${o.clientPort}`;
  }

  /** PID of the running etcd, or undefined when it is not running. */
  get pid(): number | undefined {
    return this.#child !== undefined && this.#exitInfo === undefined ? this.#child.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Starts etcd (again) on the same data directory and ports; a no-op when it is running. */
  async restart(): Promise<void> {
    if (this.running) return;
    const o = this.options;
    await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
    const log = await open(o.logPath, 'a');
    const peer = `http://${o.host}:${o.peerPort}`;
    const args = [
      '--name', o.name,
      '--data-dir', o.dataDir,
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${o.name}=${peer}`,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `sluice-${o.clientPort}`,
      // A single member elects itself after one election timeout: keep it short so starts are quick.
      '--heartbeat-interval', '50',
      '--election-timeout', '300',
      '--enable-v2=false',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ];
    let child: ChildProcess;
    try {
      child = spawn(o.binary, args, { stdio: ['ignore', log.fd, log.fd], detached: o.detached });
      if (o.detached) child.unref();
    } finally {
      await log.close();
    }
    this.#child = child;
    this.#exitInfo = undefined;
    this.#exited = new Promise((resolve) => {
      child.once('error', (e) => { this.#exitInfo = `could not start ${o.binary}: ${e.message}`; resolve(); });
      child.once('exit', (code, signal) => { this.#exitInfo = signal !== null ? `killed by ${signal}` : `exit code ${code}`; resolve(); });
    });
    await this.#waitHealthy();
  }

  async #waitHealthy(): Promise<void> {
    const end = Date.now() + this.options.readyTimeoutMs;
    let last = 'no answer';
    while (Date.now() < end) {
      if (this.#exitInfo !== undefined) {
        throw new Error(`etcd on ${this.url} stopped before it was ready (${this.#exitInfo}); see ${this.options.logPath}`);
      }
      try {
        const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
        last = JSON.stringify(body);
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.kill();
    throw new Error(`etcd on ${this.url} not healthy after ${this.options.readyTimeoutMs} ms (${last}); see ${this.options.logPath}`);
  }

  /** Kills this etcd by its PID (SIGKILL by default: an abrupt outage) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child === undefined || this.#exitInfo !== undefined) return;
    child.kill(signal);
    await this.#exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    const child = this.#child;
    if (child === undefined || this.#exitInfo !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }
}
