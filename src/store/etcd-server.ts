// A local single-member etcd server (Debian's etcd-server package, v3.4): what the tests and the
// lab run when no cluster etcd is given. Started on loopback (or another local address) with ports
// and a data directory of the caller's choosing, stopped by its own PID only, and restartable on the
// same data directory (to test a store outage).
//
// The lab runs it inside a network namespace (`netns`), where its TCP address is out of our reach;
// it then also listens on a unix socket (`socketDir`), which every namespace on the machine can
// reach because it is a file: that is how the lab itself, and health checks, talk to it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

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
  /** Run etcd inside this network namespace (`ip netns exec`); needs `socketDir`. */
  netns?: string;
  /**
   * Also listen on the unix socket `<socketDir>/etcd:<clientPort>` (etcd wants unix listen URLs in
   * host:port form and makes the socket in its working directory, which is then `socketDir`).
   */
  socketDir?: string;
  /** Called with etcd's PID as soon as it is spawned, before it is healthy (the lab records it). */
  onSpawn?: (pid: number) => void;
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

/** The socket file etcd makes for `unix://etcd:<port>` in `socketDir`. */
export const etcdSocketPath = (socketDir: string, clientPort: number): string => join(resolve(socketDir), `etcd:${clientPort}`);

type Optional = 'binary' | 'netns' | 'socketDir' | 'onSpawn';

export class EtcdServer {
  readonly options: Required<Omit<EtcdServerOptions, Optional>> & Pick<EtcdServerOptions, Optional> & { binary: string };
  readonly url: string;
  /** unix:///…/etcd:<port> when `socketDir` is set: reachable from any network namespace. */
  readonly localUrl: string | undefined;
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
      detached: o.detached ?? false, netns: o.netns, socketDir: o.socketDir, onSpawn: o.onSpawn,
    };
    if (o.netns !== undefined && o.socketDir === undefined) {
      throw new TypeError('EtcdServer: netns needs socketDir (etcd inside a namespace is only reachable from here through its unix socket)');
    }
    this.url = `http://${host}:${o.clientPort}`;
    this.localUrl = o.socketDir === undefined ? undefined : `unix://${etcdSocketPath(o.socketDir, o.clientPort)}`;
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
    if (o.socketDir !== undefined) {
      await mkdir(o.socketDir, { recursive: true, mode: 0o755 });
      // A killed etcd leaves its socket file behind, and etcd will not bind over it.
      await rm(etcdSocketPath(o.socketDir, o.clientPort), { force: true });
    }
    const log = await open(o.logPath, 'a');
    const peer = `http://${o.host}:${o.peerPort}`;
    const listen = o.socketDir === undefined ? this.url : `${this.url},unix://etcd:${o.clientPort}`;
    const args = [
      '--name', o.name,
      '--data-dir', resolve(o.dataDir),
      '--listen-client-urls', listen,
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
      // `ip netns exec` execs etcd in place, so the PID is etcd's either way.
      const [cmd, argv]: [string, string[]] = o.netns === undefined ? [o.binary, args] : ['ip', ['netns', 'exec', o.netns, o.binary, ...args]];
      child = spawn(cmd, argv, { stdio: ['ignore', log.fd, log.fd], detached: o.detached, cwd: o.socketDir });
      if (o.detached) child.unref();
    } finally {
      await log.close();
    }
    if (child.pid !== undefined) o.onSpawn?.(child.pid);
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
        const body = await this.#health();
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

  /** GET /health, over the unix socket when there is one (it works across namespaces). */
  #health(): Promise<{ health?: string }> {
    const o = this.options;
    const target = o.socketDir === undefined
      ? { host: o.host, port: o.clientPort }
      : { socketPath: etcdSocketPath(o.socketDir, o.clientPort) };
    return new Promise((resolve, reject) => {
      const req = request({ ...target, path: '/health', timeout: 1000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => {
          try {
            resolve(JSON.parse(text) as { health?: string });
          } catch {
            reject(new Error(`/health answered ${res.statusCode}: ${text.slice(0, 200)}`));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 1 s')));
      req.on('error', reject);
      req.end();
    });
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
