// One store watch: snapshot, then watches, and a resync whenever the watches break.
//
//   1 list config + leases + resources at one revision R (one transaction)
//   2 hand the listing on (valid and new → onChange; invalid → onError once; same → nothing)
//   3 watch <prefix>/ and <resources>/ from R+1
//   4 an event arrives       → re-list (coalesced: one list in flight, one more if events came meanwhile)
//   5 the watch stream drops → "store unreachable"; back off (100 ms → 5 s) and go to 1
//     etcd cancels the watch (our revision was compacted) → go to 1 at once
//
// Events only say "something changed"; the state always comes from a listing at one revision. That
// keeps changes written in one transaction together even though they reach two watchers, and makes
// a resync after an outage the same code path as any other change (level-triggered, as in felix).
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { StoreError } from '../errors.js';
import type { StoreSnapshot } from '../store.js';
import { Backoff, type Listing, fingerprint, listAll } from './client.js';
import { type EtcdLayout, resourcesPrefix } from './keys.js';
import { buildState } from './snapshot.js';

export interface WatchLoopHooks {
  onChange: (s: StoreSnapshot) => void;
  onError: (e: Error) => void;
  /** Reachability of etcd as this loop sees it. */
  onReachable: (up: boolean, why?: string) => void;
  /** The fingerprint handed out last (by load or another watch); this loop's baseline. */
  baseline: () => string | undefined;
  /** Records a fingerprint this loop handed out. */
  handedOut: (fp: string) => void;
}

export interface WatchLoopOptions {
  client: Etcd3;
  layout: EtcdLayout;
  source: string;
  log?: Logger;
  backoff?: { initialMs?: number; maxMs?: number };
}

/** Wraps a client failure as "cannot reach etcd" (STORE_READ: transient during a watch). */
export function unreachable(source: string, e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  return new StoreError('STORE_READ', source, [{ path: '', message: `cannot reach etcd: ${(e as Error).message}` }], { cause: e });
}

export class WatchLoop {
  readonly #o: WatchLoopOptions;
  readonly #h: WatchLoopHooks;
  #stopped = false;
  #current: string | undefined;
  #lastBad: string | undefined;
  #watchers: Watcher[] = [];
  #dirty = false;
  #broken: 'disconnected' | 'cancelled' | undefined;
  #why: string | undefined;
  #wake: (() => void) | undefined;
  #sleepTimer: NodeJS.Timeout | undefined;
  readonly done: Promise<void>;

  constructor(o: WatchLoopOptions, hooks: WatchLoopHooks) {
    this.#o = o;
    this.#h = hooks;
    this.#current = hooks.baseline();
    this.done = this.#run().catch((e) => this.#report(e as Error));
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelWatchers();
    if (this.#sleepTimer !== undefined) clearTimeout(this.#sleepTimer);
    this.#wake?.();
  }

  async #run(): Promise<void> {
    const backoff = new Backoff(this.#o.backoff?.initialMs, this.#o.backoff?.maxMs);
    // Separate, and reset only once a watch has delivered: etcd cancelling every new watch (say, a
    // permission problem) must not turn into a tight list/watch loop.
    const cancelBackoff = new Backoff(this.#o.backoff?.initialMs, this.#o.backoff?.maxMs);
    while (!this.#stopped) {
      // 1-3: snapshot, then watches from the next revision.
      let listing: Listing;
      try {
        listing = await listAll(this.#o.client, this.#o.layout);
      } catch (e) {
        if (this.#stopped) return;
        const delay = backoff.next();
        this.#h.onReachable(false, (e as Error).message);
        this.#o.log?.debug({ err: (e as Error).message, retryInMs: delay }, 'etcd list failed');
        await this.#sleep(delay);
        continue;
      }
      if (this.#stopped) return;
      backoff.reset();
      this.#h.onReachable(true);
      this.#deliver(listing);
      this.#startWatchers(BigInt(listing.revision) + 1n);

      // 4: re-list on events until the watches break.
      while (!this.#stopped && this.#broken === undefined) {
        if (!this.#dirty) await new Promise<void>((r) => { this.#wake = r; });
        this.#wake = undefined;
        if (this.#stopped || this.#broken !== undefined) break;
        this.#dirty = false;
        try {
          const l = await listAll(this.#o.client, this.#o.layout);
          cancelBackoff.reset();
          if (!this.#stopped) this.#deliver(l);
        } catch (e) {
          this.#broken = 'disconnected';
          this.#why = (e as Error).message;
        }
      }
      if (this.#stopped) return;

      // 5: resync.
      const broken = this.#broken;
      this.#cancelWatchers();
      if (broken === 'disconnected') {
        this.#h.onReachable(false, this.#why);
        await this.#sleep(backoff.next());
      } else {
        const delay = cancelBackoff.next();
        this.#o.log?.info({ reason: this.#why, retryInMs: delay }, 'etcd cancelled the watch; resyncing');
        await this.#sleep(delay);
      }
    }
  }

  #deliver(l: Listing): void {
    const fp = fingerprint(l);
    if (fp === this.#current) {
      this.#lastBad = undefined;
      return;
    }
    let snapshot: StoreSnapshot;
    try {
      snapshot = buildState(l, this.#o.layout, this.#o.source).snapshot;
    } catch (e) {
      if (fp !== this.#lastBad) this.#report(e as Error);
      this.#lastBad = fp;
      return;
    }
    this.#lastBad = undefined;
    this.#current = fp;
    this.#h.handedOut(fp);
    try {
      this.#h.onChange(snapshot);
    } catch (e) {
      // The listener's bug, not the store's: report it and keep watching.
      this.#report(e as Error);
    }
  }

  #report(e: Error): void {
    try {
      this.#h.onError(e);
    } catch (err) {
      this.#o.log?.error({ err }, 'store onError listener threw');
    }
  }

  #startWatchers(from: bigint): void {
    this.#dirty = false;
    this.#broken = undefined;
    const prefixes = [`${this.#o.layout.prefix}/`, resourcesPrefix(this.#o.layout)];
    this.#watchers = prefixes.map((p) => {
      const w = this.#o.client.watch().prefix(p).startRevision(from.toString()).watcher();
      w.on('data', (res) => {
        if (this.#watchers.includes(w) && res.events.length > 0) {
          this.#dirty = true;
          this.#wake?.();
        }
      });
      w.on('disconnected', (err) => this.#breakWith(w, 'disconnected', err.message));
      // Cancelled by etcd, e.g. "required revision has been compacted". The client has already
      // dropped this watcher; cancelling it again would wait for an answer that never comes.
      w.on('error', (err) => {
        if (!this.#watchers.includes(w)) return;
        this.#watchers = this.#watchers.filter((x) => x !== w);
        this.#broken ??= 'cancelled';
        this.#why = err.message;
        this.#wake?.();
      });
      return w;
    });
  }

  #breakWith(w: Watcher, how: 'disconnected' | 'cancelled', why: string): void {
    if (!this.#watchers.includes(w) || this.#broken !== undefined) return;
    this.#broken = how;
    this.#why = why;
    this.#wake?.();
  }

  #cancelWatchers(): void {
    for (const w of this.#watchers) void w.cancel().catch(() => undefined);
    this.#watchers = [];
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      this.#wake = r;
      this.#sleepTimer = setTimeout(r, ms);
    });
  }
}
