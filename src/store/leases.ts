// This host's subnet lease, held for as long as the daemon runs (Flannel's LeaseRenewer +
// CompleteLease, with etcd keepalives instead of re-Puts):
//
//   start() ──acquireSubnet──► held ──keepalive (every TTL/3)──► held
//                                │
//                                ├─ keepalive or key watch fails ─► degraded "store unreachable" (still
//                                │                            held: etcd keeps the key for its TTL, and
//                                │                            refreshes every lease when it restarts)
//                                ├─ etcd says the lease expired, or our key was deleted
//                                │     └─► lost ─► re-acquire with backoff (100 ms → 5 s): the same
//                                │                 subnet if it is still free (same PublicIP)
//                                └─ close(): stop keepalives; the key stays until its TTL runs out, so a
//                                   restarted host gets its subnet back (close({revoke: true}) frees it)
//
// Every change is reported to listeners (acquired, lost, degraded, recovered), so the daemon can log
// it and its /healthz can say "degraded: store unreachable".
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { type AcquireOptions, type SubnetLease, acquireSubnet } from './etcd/acquire.js';
import { Backoff } from './etcd/client.js';
import { KeepAlive } from './etcd/keepalive.js';
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
  #keepAlive: KeepAlive | undefined;
  #watcher: Watcher | undefined;
  #unreachable = false;
  #lost = false;
  #closed = false;
  #reacquiring: Promise<void> | undefined;
  #keyCheck: Promise<void> | undefined;
  readonly #sleeps = new Set<{ wake: () => void }>();

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
    const lease = await acquireSubnet(this.#client, this.#layout, this.#o, this.#source, this.#o.log);
    if (this.#closed) throw new Error('lease manager closed while acquiring');
    this.#hold(lease, false);
    return lease;
  }

  #hold(lease: SubnetLease, wasLost: boolean): void {
    const before = this.#current;
    this.#current = lease;
    this.#lost = false;
    this.#o.log?.info({ key: lease.key, subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, reused: lease.reused, attempts: lease.attempts, ttl: lease.ttlSeconds }, wasLost ? 'subnet lease re-acquired' : 'subnet lease acquired');
    this.#emit({ type: 'acquired', lease, changed: before !== undefined && before.subnet !== lease.subnet });
    this.#keepAlive?.stop();
    this.#keepAlive = undefined;
    if (lease.leaseId !== '0') {
      const ka: KeepAlive = new KeepAlive(this.#client, lease.leaseId, lease.ttlSeconds, {
        ok: () => { if (this.#keepAlive === ka) this.#setUnreachable(false); },
        failed: (err) => { if (this.#keepAlive === ka) this.#setUnreachable(true, err.message); },
        expired: () => { if (this.#keepAlive === ka) this.#onLost(`etcd lease ${lease.leaseId} expired`); },
      });
      this.#keepAlive = ka;
      ka.start();
    }
    this.#watchOwnKey(lease, BigInt(lease.revision) + 1n);
  }

  /**
   * Flannel's CompleteLease watch: our key vanishing (expiry, or someone deleting it) means the lease
   * is gone. The watch is ours to restart (not the client's, whose reconnect timers outlive close()):
   * when it breaks we check the key directly, with backoff, and watch again from there.
   */
  #watchOwnKey(lease: SubnetLease, from: bigint): void {
    void this.#watcher?.cancel().catch(() => undefined);
    const w = this.#client.watch().key(lease.key).startRevision(from.toString()).watcher();
    this.#watcher = w;
    const broken = (why: string, down: boolean): void => {
      if (this.#watcher !== w || this.#closed) return;
      this.#watcher = undefined;
      // (A watcher cancelled by etcd is already dropped by the client: nothing to cancel.)
      if (down) void w.cancel().catch(() => undefined);
      if (down) this.#setUnreachable(true, why);
      this.#keyCheck ??= this.#checkOwnKey(lease).finally(() => { this.#keyCheck = undefined; });
    };
    w.on('delete', () => { if (this.#watcher === w) this.#onLost(`our key ${lease.key} was deleted`); });
    w.on('disconnected', (err) => broken(err.message, true));
    // Cancelled by etcd (e.g. the revision was compacted while we were away).
    w.on('error', (err) => broken(err.message, false));
  }

  async #checkOwnKey(lease: SubnetLease): Promise<void> {
    const backoff = new Backoff(this.#o.backoff?.initialMs, this.#o.backoff?.maxMs);
    while (!this.#closed && !this.#lost && this.#current === lease) {
      let res;
      try {
        res = await this.#client.get(lease.key).exec();
      } catch (e) {
        this.#setUnreachable(true, (e as Error).message);
        await this.#pause(backoff.next());
        continue;
      }
      if (this.#closed || this.#lost || this.#current !== lease) return;
      this.#setUnreachable(false);
      const kv = res.kvs[0];
      if (kv === undefined) this.#onLost(`our key ${lease.key} is gone`);
      else if (String(kv.lease) !== lease.leaseId) this.#onLost(`our key ${lease.key} is no longer bound to our etcd lease`);
      else this.#watchOwnKey(lease, BigInt(res.header.revision) + 1n);
      return;
    }
  }

  /** Waits `ms`, or less if close() is called. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const z = {
        timer: undefined as NodeJS.Timeout | undefined,
        wake: () => {
          clearTimeout(z.timer);
          this.#sleeps.delete(z);
          resolve();
        },
      };
      z.timer = setTimeout(z.wake, ms);
      this.#sleeps.add(z);
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
    this.#keepAlive?.stop();
    this.#keepAlive = undefined;
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
        const lease = await acquireSubnet(this.#client, this.#layout, o, this.#source, this.#o.log);
        if (this.#closed) return;
        this.#unreachable = false;
        this.#hold(lease, true);
        this.#emit({ type: 'recovered' });
        return;
      } catch (e) {
        const delay = backoff.next();
        this.#o.log?.warn({ err: (e as Error).message, retryInMs: delay }, 're-acquiring the subnet lease failed');
        await this.#pause(delay);
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
   * host that restarts gets its subnet back; `revoke: true` deletes it now (the host leaves; a
   * reservation is left alone).
   */
  async close(o: { revoke?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const z of [...this.#sleeps]) z.wake();
    await this.#reacquiring?.catch(() => undefined);
    await this.#keyCheck?.catch(() => undefined);
    const w = this.#watcher;
    this.#watcher = undefined;
    await w?.cancel().catch(() => undefined);
    this.#keepAlive?.stop();
    this.#keepAlive = undefined;
    const held = this.#lost ? undefined : this.#current;
    // Revoking the etcd lease deletes the key with it. A reservation stays: it is the admin's.
    if (o.revoke === true && held !== undefined && held.leaseId !== '0') {
      await this.#client.leaseClient.leaseRevoke({ ID: held.leaseId }).catch(() => undefined);
    }
    this.#listeners.clear();
  }
}
