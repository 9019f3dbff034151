// The etcd client as Sluice uses it, and the one read everything else is built on: a consistent
// listing of the config, the subnet leases and the resources at one revision.
//
// Fault handling: the etcd3 client's defaults retry three times and put a circuit breaker on each
// host that stays open for 5 s after three failures, even once etcd is back. Our watch and lease
// loops have their own backoff (100 ms → 5 s), so the client gets a pass-through policy: every call
// is tried once, right away, and fails fast with the real error. Unary calls get a deadline so a
// blackholed etcd cannot hang them; streams (watch, keepalive) have none.
import { Etcd3, type IOptions, type IKeyValue, type IRequestOp } from 'etcd3';
import { type EtcdLayout, configKey, prefixEnd, resourcesPrefix, subnetsPrefix } from './keys.js';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** Runs each call once (a cockatiel-shaped policy; the etcd3 client only calls execute()). */
const passThrough: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

type WatchBackoffT = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** Backoff for the client's own watch-stream reconnects: 100 ms doubling to 5 s (Flannel's). */
class WatchBackoff implements WatchBackoffT {
  constructor(readonly duration = 50) {}
  next(): WatchBackoff {
    return new WatchBackoff(Math.min(5000, this.duration * 2));
  }
}

export interface ClientOptions {
  /** etcd client URLs (default http://127.0.0.1:2379). */
  endpoints?: string | readonly string[];
  /** Deadline of each unary request (default 5 s). */
  requestTimeoutMs?: number;
}

export function createClient(o: ClientOptions = {}): Etcd3 {
  const hosts = o.endpoints === undefined ? [DEFAULT_ENDPOINT] : typeof o.endpoints === 'string' ? [o.endpoints] : [...o.endpoints];
  if (hosts.length === 0) throw new TypeError('etcd endpoints: expected at least one URL');
  for (const h of hosts) {
    // unix:///path: a socket file (the lab's etcd, reachable from every network namespace); grpc-js dials it as is.
    if (!/^https?:\/\/[^/\s]+\/?$/.test(h) && !/^unix:\/\/\/\S+$/.test(h)) {
      throw new TypeError(`etcd endpoint ${JSON.stringify(h)} is not a URL like http://127.0.0.1:2379 (or unix:///path/to/socket)`);
    }
  }
  const timeout = o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new Etcd3({
    hosts,
    faultHandling: { host: () => passThrough, global: passThrough, watchBackoff: new WatchBackoff() },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    grpcOptions: {
      // Notice a dead connection (no RST, e.g. a partition) within ~15 s rather than TCP's minutes.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 5_000,
    },
  });
}

export interface KV {
  key: string;
  value: string;
  /** etcd lease ID ("0": no lease — a reservation, in Flannel's terms). */
  lease: string;
  createRevision: string;
  modRevision: string;
}

export interface Listing {
  revision: string;
  config: KV | undefined;
  subnets: KV[];
  resources: KV[];
}

const kv = (k: IKeyValue): KV => ({
  key: k.key.toString(), value: k.value.toString(), lease: String(k.lease ?? '0'),
  createRevision: String(k.create_revision), modRevision: String(k.mod_revision),
});

const range = (prefix: string): IRequestOp => ({ request_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } });

/** Reads config, leases and resources in one transaction, so all three are of the same revision. */
export async function listAll(client: Etcd3, layout: EtcdLayout): Promise<Listing> {
  const res = await client.kv.txn({
    success: [{ request_range: { key: Buffer.from(configKey(layout)) } }, range(subnetsPrefix(layout)), range(resourcesPrefix(layout))],
  });
  const [cfg, subnets, resources] = res.responses.map((r) => r.response_range.kvs.map(kv));
  return { revision: String(res.header.revision), config: cfg[0], subnets, resources };
}

/** Identifies the content of a listing: equal fingerprints, equal snapshots. */
export function fingerprint(l: Listing): string {
  const parts: string[] = [l.config === undefined ? '' : l.config.value];
  for (const x of l.subnets) parts.push(x.key, x.value);
  parts.push('');
  for (const x of l.resources) parts.push(x.key, x.value);
  return parts.join('\0');
}

/** Backoff from `initialMs` doubling to `maxMs` (Flannel's watch loop: 100 ms → 5 s). */
export class Backoff {
  #next: number;
  constructor(readonly initialMs = 100, readonly maxMs = 5000) {
    this.#next = initialMs;
  }

  /** The delay to wait now; the following one doubles. */
  next(): number {
    const d = this.#next;
    this.#next = Math.min(this.maxMs, this.#next * 2);
    return d;
  }

  reset(): void {
    this.#next = this.initialMs;
  }
}
