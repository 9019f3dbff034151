// Keeping an etcd lease alive: one keepalive request every TTL/3 (what etcd's Go client does),
// each on a short stream with a deadline, with our own timer so stop() really stops.
//
// Why not the etcd3 client's Lease: a keepalive answer that arrives after release() re-arms its
// TTL-long watchdog timer, which then holds the process open for up to the TTL (24 h by default).
//
// No client-side give-up: while etcd cannot be reached we keep asking (every second at most), and
// only etcd's answer ends the lease — TTL 0, the lease is gone — because etcd refreshes every lease
// when it restarts, so a lease often outlives an outage longer than its TTL.
import type { Etcd3 } from 'etcd3';

export interface KeepAliveHooks {
  /** A keepalive was answered: etcd is reachable and the lease alive. */
  ok(): void;
  /** A keepalive failed (etcd unreachable, or no answer in time). Retried. */
  failed(err: Error): void;
  /** etcd says the lease no longer exists. Keepalives stop. */
  expired(): void;
}

const RETRY_MS = 1000;

/** Sends one keepalive; resolves with the TTL etcd granted (0: the lease does not exist). */
export async function keepaliveOnce(client: Etcd3, id: string, timeoutMs: number): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
  return new Promise<number>((resolve, reject) => {
    stream.on('data', (res) => {
      resolve(Number(res.TTL));
      stream.end();
    });
    stream.on('error', reject);
    stream.on('end', () => reject(new Error('keepalive stream ended without an answer')));
    stream.write({ ID: id });
  });
}

export class KeepAlive {
  readonly #client: Etcd3;
  readonly #hooks: KeepAliveHooks;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(client: Etcd3, readonly id: string, readonly ttlSeconds: number, hooks: KeepAliveHooks) {
    this.#client = client;
    this.#hooks = hooks;
    this.#intervalMs = Math.max(200, (ttlSeconds * 1000) / 3);
  }

  start(): void {
    this.#schedule(this.#intervalMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    let ttl: number;
    try {
      ttl = await keepaliveOnce(this.#client, this.id, Math.min(5000, this.#intervalMs));
    } catch (e) {
      if (this.#stopped) return;
      this.#hooks.failed(e as Error);
      this.#schedule(Math.min(RETRY_MS, this.#intervalMs));
      return;
    }
    if (this.#stopped) return;
    if (ttl <= 0) {
      this.#stopped = true;
      this.#hooks.expired();
      return;
    }
    this.#hooks.ok();
    this.#schedule(this.#intervalMs);
  }
}
