// This host's subnet lease, held for as long as the daemon runs (Flannel's LeaseRenewer +
// CompleteLease, with etcd keepalives instead of re-Puts):
//
//   start() ──acquireSubnet──► held ──keepalive (client, every TTL/3)──► held
//                                │
//                                ├─ keepalive stream fails ─► degraded "store unreachable" (still held;
//                                │                            etcd keeps the key for TTL, and refreshes
//                                │                            every lease when it restarts)
//                                ├─ etcd says the lease expired, or our key was deleted
//                                │     └─► lost ─► re-acquire with backoff (100 ms → 5 s): the same
//                                │                 subnet if it is still free (same PublicIP)
//                                └─ close(): stop keepalives; the key stays until its TTL runs out, so a
//                                   restarted host gets its subnet back (close({revoke: true}) frees it)
//
// Every change is reported to listeners (acquired, lost, degraded, recovered), so the daemon can log
// it and its /healthz can say "degraded: store unreachable".
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { type AcquireOptions, type SubnetLease, acquireSubnet } from './etcd/acquire.js';
import { Backoff } from './etcd/client.js';
import type { EtcdLayout } from './etcd/keys.js';

export { type AcquireOptions, DEFAULT_LEASE_TTL_SECONDS, RACE_RETRIES, type SubnetLease, acquireSubnet } from './etcd/acquire.js';

export type LeaseEvent =
  | { type: 'acquired'; lease: SubnetLease; /** The subnet differs from the one held before. */ changed: boolean }
  | { type: 'lost'; reason: string }
  | { type: 'degraded'; reason: string }
  | { type: 'recovered' };

export interface LeaseHealth {
  status: 'ok' | 'degraded';
  /** Why not ok: "store unreachable", "subnet lease lost; re-acquiring". */
  reasons: string[];
}

export interface SubnetLeaseManagerOptions extends AcquireOptions {
  log?: Logger;
  /** Re-acquire backoff (default 100 ms → 5 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export class SubnetLeaseManager {
  readonly #client: Etcd3;
  readonly #layout: EtcdLayout;
  readonly #o: SubnetLeaseManagerOptions;
  readonly #source: string;
  readonly #listeners = new Set<(e: LeaseEvent) => void>();
  #current: SubnetLease | undefined;
  #etcdLease: Lease | undefined;
  #watcher: Watcher | undefined;
  #unreachable = false;
  #lost = false;
  #closed = false;
  #reacquiring: Promise<void> | undefined;
  #sleep: { timer: NodeJS.Timeout; wake: () => void } | undefined;

  constructor(client: Etcd3, layout: EtcdLayout, options: SubnetLeaseManagerOptions, source: string) {
    this.#client = client;
    this.#layout = layout;
    this.#o = options;
    this.#source = source;
  }

  /** The lease held now (undefined before start() and while re-acquiring after a loss). */
  current(): SubnetLease | undefined {
    return this.#lost ? undefined : this.#current;
  }

  health(): LeaseHealth {
    const reasons: string[] = [];
    if (this.#unreachable) reasons.push('store unreachable');
    if (this.#lost) reasons.push('subnet lease lost; re-acquiring');
    return { status: reasons.length === 0 ? 'ok' : 'degraded', reasons };
  }

  /** Calls `listener` on every lease event; returns the unsubscribe function. */
  onEvent(listener: (e: LeaseEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Acquires the lease (once; a failure — etcd unreachable, no config, out of subnets — is thrown,
   * so the daemon can refuse to start or retry) and keeps it from then on.
   */
  async start(): Promise<SubnetLease> {
    if (this.#current !== undefined) return this.#current;
    const got = await acquireSubnet(this.#client, this.#layout, this.#o, this.#source, this.#o.log);
    if (this.#closed) {
      got.etcdLease?.release();
      throw new Error('lease manager closed while acquiring');
    }
    this.#hold(got.lease, got.etcdLease, false);
    return got.lease;
  }

  #hold(lease: SubnetLease, etcdLease: Lease | undefined, wasLost: boolean): void {
    const before = this.#current;
    this.#current = lease;
    this.#etcdLease = etcdLease;
    this.#lost = false;
    this.#o.log?.info({ key: lease.key, subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, reused: lease.reused, attempts: lease.attempts, ttl: lease.ttlSeconds }, wasLost ? 'subnet lease re-acquired' : 'subnet lease acquired');
    this.#emit({ type: 'acquired', lease, changed: before !== undefined && before.subnet !== lease.subnet });
    if (etcdLease !== undefined) {
      etcdLease.on('lost', (err) => { if (this.#etcdLease === etcdLease) this.#onLost(`etcd lease expired (${err.message})`); });
      // (Typed as a response, but the client passes the gRPC error.)
      etcdLease.on('keepaliveFailed', (err) => { if (this.#etcdLease === etcdLease) this.#setUnreachable(true, (err as unknown as Error).message); });
      etcdLease.on('keepaliveSucceeded', () => { if (this.#etcdLease === etcdLease) this.#setUnreachable(false); });
    }
    this.#watchOwnKey(lease);
  }

  /** Flannel's CompleteLease watch: our key vanishing (expiry, or someone deleting it) means the lease is gone. */
  #watchOwnKey(lease: SubnetLease): void {
    void this.#watcher?.cancel().catch(() => undefined);
    const w = this.#client.watch().key(lease.key).startRevision(String(BigInt(lease.revision) + 1n)).watcher();
    this.#watcher = w;
    w.on('delete', () => { if (this.#watcher === w) this.#onLost(`our key ${lease.key} was deleted`); });
    w.on('disconnected', (err) => { if (this.#watcher === w) this.#setUnreachable(true, err.message); });
    w.on('connected', () => { if (this.#watcher === w) this.#setUnreachable(false); });
    // Cancelled by etcd (e.g. its revision was compacted while we were away): check the key directly.
    w.on('error', () => {
      if (this.#watcher !== w || this.#closed) return;
      void this.#client.get(lease.key).exec().then(
        (res) => {
          if (this.#watcher !== w) return;
          if (res.kvs.length > 0) this.#watchOwnKey({ ...lease, revision: String(res.header.revision) });
          else this.#onLost(`our key ${lease.key} is gone`);
        },
        () => this.#onLost('could not check our key after its watch was cancelled'),
      );
    });
  }

  #setUnreachable(down: boolean, why?: string): void {
    if (this.#closed || down === this.#unreachable) return;
    this.#unreachable = down;
    if (down) {
      this.#o.log?.warn({ err: why }, 'etcd unreachable; keeping the subnet lease and retrying');
      this.#emit({ type: 'degraded', reason: 'store unreachable' });
    } else {
      this.#o.log?.info('etcd reachable again; subnet lease kept alive');
      if (!this.#lost) this.#emit({ type: 'recovered' });
    }
  }

  #onLost(reason: string): void {
    if (this.#closed || this.#lost) return;
    this.#lost = true;
    this.#o.log?.warn({ reason, key: this.#current?.key }, 'subnet lease lost; re-acquiring');
    this.#etcdLease?.release();
    this.#etcdLease = undefined;
    void this.#watcher?.cancel().catch(() => undefined);
    this.#watcher = undefined;
    this.#emit({ type: 'lost', reason });
    this.#emit({ type: 'degraded', reason: 'subnet lease lost; re-acquiring' });
    this.#reacquiring ??= this.#reacquire().finally(() => { this.#reacquiring = undefined; });
  }

  async #reacquire(): Promise<void> {
    const backoff = new Backoff(this.#o.backoff?.initialMs, this.#o.backoff?.maxMs);
    while (!this.#closed) {
      try {
        const prev = this.#current;
        const o = { previousSubnet: prev?.subnet, previousIPv6Subnet: prev?.ipv6Subnet, ...this.#o };
        const got = await acquireSubnet(this.#client, this.#layout, o, this.#source, this.#o.log);
        if (this.#closed) {
          got.etcdLease?.release();
          return;
        }
        this.#unreachable = false;
        this.#hold(got.lease, got.etcdLease, true);
        this.#emit({ type: 'recovered' });
        return;
      } catch (e) {
        const delay = backoff.next();
        this.#o.log?.warn({ err: (e as Error).message, retryInMs: delay }, 're-acquiring the subnet lease failed');
        await new Promise<void>((wake) => { this.#sleep = { timer: setTimeout(wake, delay), wake }; });
        this.#sleep = undefined;
      }
    }
  }

  #emit(e: LeaseEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch (err) {
        this.#o.log?.error({ err }, 'lease event listener threw');
      }
    }
  }

  /**
   * Stops holding the lease. By default the key stays until its TTL runs out, as with Flannel, so a
   * host that restarts gets its subnet back; `revoke: true` deletes it now (the host leaves).
   */
  async close(o: { revoke?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sleep !== undefined) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.wake();
    }
    await this.#reacquiring?.catch(() => undefined);
    const w = this.#watcher;
    this.#watcher = undefined;
    await w?.cancel().catch(() => undefined);
    const lease = this.#etcdLease;
    this.#etcdLease = undefined;
    if (lease !== undefined) {
      if (o.revoke === true) await lease.revoke().catch(() => undefined);
      else lease.release();
    } else if (o.revoke === true && this.#current !== undefined && !this.#lost) {
      await this.#client.delete().key(this.#current.key).exec().catch(() => undefined);
    }
    this.#listeners.clear();
  }
}
