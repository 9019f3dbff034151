// The cluster store: etcd v3, laid out so Sluice and Flannel (vxlan backend) hosts can share it.
//
//   <prefix>/config              network config, Flannel JSON          ─┐
//   <prefix>/subnets/<ip>-<len>  one lease per host (etcd-lease bound)   ├─ listAll (one txn, one revision)
//   <resources>/<group>/<Kind>/… manifests: Namespace, Pod, policies    ─┘      │
//                                                                               ▼
//                                               buildState (same checks as the cluster file)
//                                                                               │
//   load() ─────────────────────────────────────────────────────────────────────┤
//   watch() = WatchLoop: list, watch from rev+1, re-list on events, resync ─────┴─► StoreSnapshot
//   acquireLease() = SubnetLeaseManager: this host's subnet, kept alive
//
// health() says "degraded: store unreachable" while a watch cannot reach etcd or the lease is lost.
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { ManifestError } from '../policy/errors.js';
import { type ClientOptions, DEFAULT_ENDPOINT, createClient, fingerprint, listAll } from './etcd/client.js';
import { type ConfigExtras, etcdConfigJSON, parseEtcdConfig } from './etcd/config.js';
import { type EtcdLayout, configKey, makeLayout, subnetKey } from './etcd/keys.js';
import { hostLeaseJSON } from './etcd/lease-record.js';
import { type WriteResult, applyResources, deleteResources, planResources } from './etcd/resources.js';
import { type EtcdState, buildState } from './etcd/snapshot.js';
import { WatchLoop, unreachable } from './etcd/watch-loop.js';
import { StoreError, type StoreIssue } from './errors.js';
import { type AcquireOptions, SubnetLeaseManager } from './leases.js';
import type { HostRecord, NetworkConfig, Store, StoreHealth, StoreSnapshot } from './store.js';

export { DEFAULT_PREFIX, DEFAULT_RESOURCE_PREFIX } from './etcd/keys.js';
export { DEFAULT_ENDPOINT } from './etcd/client.js';
export type { WriteResult } from './etcd/resources.js';
export { StoreError } from './errors.js';
export { type AcquireOptions, type LeaseEvent, type LeaseHealth, type SubnetLease, SubnetLeaseManager } from './leases.js';

export interface EtcdStoreOptions extends ClientOptions {
  /** Flannel prefix (default /coreos.com/network). */
  prefix?: string;
  /** Where manifests live (default /sluice/resources). */
  resourcePrefix?: string;
  /** Use this client instead of making one (it is then not closed by close()). */
  client?: Etcd3;
  log?: Logger;
  /** Reconnect backoff of watches and lease re-acquisition (default 100 ms → 5 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export type { StoreHealth } from './store.js';

export class EtcdStore implements Store {
  readonly layout: EtcdLayout;
  readonly client: Etcd3;
  /** Names the store in errors: `etcd http://127.0.0.1:2379`. */
  readonly source: string;
  readonly #o: EtcdStoreOptions;
  readonly #ownClient: boolean;
  /** Fingerprint of the state handed out last (load or any watch). */
  #currentFp: string | undefined;
  readonly #loops = new Set<WatchLoop>();
  readonly #down = new Set<WatchLoop>();
  readonly #leases = new Set<SubnetLeaseManager>();
  readonly #healthListeners = new Set<(h: StoreHealth) => void>();
  #lastHealth = '';
  #closed = false;

  constructor(o: EtcdStoreOptions = {}) {
    this.#o = o;
    this.layout = makeLayout(o.prefix, o.resourcePrefix);
    const endpoints = o.endpoints === undefined ? [DEFAULT_ENDPOINT] : typeof o.endpoints === 'string' ? [o.endpoints] : [...o.endpoints];
    this.source = `etcd ${endpoints.join(',')}`;
    this.#ownClient = o.client === undefined;
    this.client = o.client ?? createClient(o);
  }

  /** Reads and validates the current state; StoreError STORE_READ when etcd cannot be reached. */
  async load(): Promise<StoreSnapshot> {
    const s = await this.state();
    return s.snapshot;
  }

  /** load() with the parsed network (allocation range) and hosts, for tools such as `sluice get`. */
  async state(): Promise<EtcdState> {
    let listing;
    try {
      listing = await listAll(this.client, this.layout);
    } catch (e) {
      throw unreachable(this.source, e);
    }
    const state = buildState(listing, this.layout, this.source);
    this.#currentFp = fingerprint(listing);
    return state;
  }

  /**
   * Reports every later valid state. The first listing is compared with what load() returned, so a
   * change made in between is not lost; without an earlier load() the current state is reported.
   */
  watch(onChange: (s: StoreSnapshot) => void, onError: (e: Error) => void): () => void {
    if (this.#closed) throw new Error('store is closed');
    const log = this.#o.log;
    const loop: WatchLoop = new WatchLoop(
      { client: this.client, layout: this.layout, source: this.source, log, backoff: this.#o.backoff },
      {
        onChange, onError,
        baseline: () => this.#currentFp,
        handedOut: (fp) => { this.#currentFp = fp; },
        onReachable: (up, why) => {
          if (!this.#loops.has(loop)) return;
          const was = this.#down.has(loop);
          if (up === !was) return;
          if (up) {
            this.#down.delete(loop);
            log?.info('etcd reachable again; resynced');
          } else {
            this.#down.add(loop);
            log?.warn({ err: why }, 'etcd unreachable; keeping the last state and retrying');
          }
          this.#healthChanged();
        },
      },
    );
    this.#loops.add(loop);
    return () => {
      loop.stop();
      this.#loops.delete(loop);
      if (this.#down.delete(loop)) this.#healthChanged();
    };
  }

  /**
   * Acquires this host's subnet lease (see leases.ts) and keeps it until close(). Throws when etcd
   * cannot be reached, there is no valid config, or no subnet is free.
   */
  async acquireLease(o: AcquireOptions): Promise<SubnetLeaseManager> {
    if (this.#closed) throw new Error('store is closed');
    const m = new SubnetLeaseManager(this.client, this.layout, { ...o, log: this.#o.log, backoff: this.#o.backoff }, this.source);
    m.onEvent(() => this.#healthChanged());
    try {
      await m.start();
    } catch (e) {
      await m.close();
      throw unreachable(this.source, e);
    }
    this.#leases.add(m);
    return m;
  }

  /**
   * Writes the network config (Flannel JSON), after checking it the way readers will. For `lab up
   * --store etcd` and tests; a cluster's admin may equally `etcdctl put <prefix>/config '{...}'`.
   */
  async writeConfig(c: NetworkConfig, extras: ConfigExtras = {}): Promise<void> {
    const json = etcdConfigJSON(c, extras);
    const issues: StoreIssue[] = [];
    if (parseEtcdConfig(json, issues) === null) throw new StoreError('STORE_INVALID', this.source, issues);
    await this.#write(() => this.client.put(configKey(this.layout)).value(json).exec());
  }

  /**
   * Publishes a host that holds no lease of its own — a reservation, in Flannel's terms: a key
   * without a TTL, e.g. for a kernel VXLAN peer. Daemons acquire their leases with acquireLease().
   */
  async putHost(h: HostRecord): Promise<void> {
    const config = await this.#readConfig();
    const json = hostLeaseJSON(h, config.backend);
    await this.#write(() => this.client.put(subnetKey(this.layout, h.subnet, h.ipv6Subnet)).value(json).exec());
  }

  /** Writes manifests like `sluice apply` (validated first, one transaction); returns what happened. */
  async applyManifests(manifests: readonly unknown[], source = 'manifests'): Promise<WriteResult[]> {
    const plan = planResources(manifests.map((value, i) => ({ source, doc: i + 1, value })));
    return this.#write(() => applyResources(this.client, this.layout, plan, this.source));
  }

  /** Deletes the resources these manifests name, in one transaction. */
  async deleteManifests(manifests: readonly unknown[], source = 'manifests'): Promise<WriteResult[]> {
    const plan = planResources(manifests.map((value, i) => ({ source, doc: i + 1, value })));
    return this.#write(() => deleteResources(this.client, this.layout, plan));
  }

  async #readConfig(): Promise<NetworkConfig> {
    const text = await this.#write(() => this.client.get(configKey(this.layout)).string());
    if (text === null) throw new StoreError('STORE_INVALID', this.source, [{ path: '', message: `no network config at ${configKey(this.layout)}` }]);
    const issues: StoreIssue[] = [];
    const net = parseEtcdConfig(text, issues);
    if (net === null) throw new StoreError('STORE_INVALID', this.source, issues);
    return net.config;
  }

  async #write<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreError || e instanceof ManifestError) throw e;
      throw unreachable(this.source, e);
    }
  }

  health(): StoreHealth {
    const reasons = new Set<string>();
    if (this.#down.size > 0) reasons.add('store unreachable');
    for (const m of this.#leases) for (const r of m.health().reasons) reasons.add(r);
    return { status: reasons.size === 0 ? 'ok' : 'degraded', reasons: [...reasons] };
  }

  /** Calls `listener` whenever health() changes; returns the unsubscribe function. */
  onHealth(listener: (h: StoreHealth) => void): () => void {
    this.#healthListeners.add(listener);
    return () => this.#healthListeners.delete(listener);
  }

  #healthChanged(): void {
    const h = this.health();
    const key = JSON.stringify(h);
    if (key === this.#lastHealth) return;
    this.#lastHealth = key;
    for (const l of [...this.#healthListeners]) l(h);
  }

  /** Stops watches and lease keepalives (leases are not revoked: see SubnetLeaseManager.close). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const loop of this.#loops) loop.stop();
    await Promise.all([...this.#loops].map((l) => l.done));
    this.#loops.clear();
    this.#down.clear();
    await Promise.all([...this.#leases].map((m) => m.close()));
    this.#leases.clear();
    this.#healthListeners.clear();
    if (this.#ownClient) this.client.close();
  }
}
