// The stateful flow cache: FlowKey -> FlowEntry, conntrack-like.
//
//   lru-cache<int32, FlowEntry>  key = FlowKey.hashSymmetric() (a Smi: no string,
//                                no BigInt per packet); value = the head of a
//                                collision chain linked through FlowEntry.next
//
// Both directions of a flow hash alike, so one lookup finds the entry for a
// packet or for its reply. An Allowed entry matches its own key and its reverse
// (replies pass), and so does a Revoked one (a connection a policy change
// denied: both directions drop); a Denied entry matches only its own key (a
// reply-direction packet is a flow of its own and gets its own verdict).
//
// Bounded by `max` chains (LRU eviction, so a flood of new flows cannot grow
// memory) and by `maxChain` entries per chain. Expiry is lazy — checked on lookup
// against a coarse clock the owner advances once per batch (setNow) — plus a
// periodic sweep (sweepChunk) over a dump of the keys. No per-entry timers.

import { LRUCache } from 'lru-cache';
import type { Endpoint } from '../dataplane/endpoint.js';
import type { FlowKey } from '../packet/flow-key.js';
import { TcpFlag } from '../packet/tcp.js';
import { IpProto } from '../packet/proto.js';
import { FlowEntry, FlowState, TcpBits } from './flow-entry.js';

export interface FlowCacheOptions {
  /** Most chains (≈ flows) kept; the least recently used is evicted (default 1,000,000). */
  max?: number;
  /** Most entries per hash chain (default 8); bounds the cost of hash collisions. */
  maxChain?: number;
  /** TCP: idle timeout once a reply was seen (default 10 min). */
  tcpEstablishedMs?: number;
  /** TCP: idle timeout before any reply (default 60 s). */
  tcpOpeningMs?: number;
  /** TCP: lifetime after FIN both ways or an RST (default 5 s; not extended by later packets). */
  tcpClosingMs?: number;
  /** UDP (and UDP-Lite, SCTP): idle timeout (default 60 s). */
  udpIdleMs?: number;
  /** ICMP and any other protocol: idle timeout (default 60 s). */
  otherIdleMs?: number;
  /** Hash function (default FlowKey.hashSymmetric); tests inject collisions. Must be direction-independent. */
  hash?: (key: FlowKey) => number;
}

export interface FlowCacheStats {
  flows: number;
  chains: number;
  evicted: number;
  expired: number;
  chainFull: number;
}

function timeout(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v > 0)) throw new TypeError(`FlowCache: ${name} must be a positive number of ms, got ${String(v)}`);
  return v;
}

/** UDP-Lite (RFC 3828): ports like UDP. */
const UDPLITE = 136;

const symmetricHash = (k: FlowKey): number => k.hashSymmetric();

export class FlowCache {
  readonly max: number;
  readonly maxChain: number;
  readonly tcpEstablishedMs: number;
  readonly tcpOpeningMs: number;
  readonly tcpClosingMs: number;
  readonly udpIdleMs: number;
  readonly otherIdleMs: number;
  /** The coarse clock (ms), advanced by setNow. */
  now = 0;
  /** Set by lookup(): the packet is in the reply direction of the returned entry. */
  reverse = false;
  /** Entries linked into chains. */
  size = 0;
  evicted = 0;
  expired = 0;
  chainFull = 0;
  readonly #lru: LRUCache<number, FlowEntry>;
  readonly #hash: (key: FlowKey) => number;
  readonly #chainScratch: FlowEntry[] = [];

  constructor(opts: FlowCacheOptions = {}) {
    const max = opts.max ?? 1_000_000;
    if (!Number.isInteger(max) || max < 1) throw new TypeError(`FlowCache: max must be a positive integer, got ${String(max)}`);
    const maxChain = opts.maxChain ?? 8;
    if (!Number.isInteger(maxChain) || maxChain < 1) throw new TypeError(`FlowCache: maxChain must be a positive integer, got ${String(maxChain)}`);
    this.max = max;
    this.maxChain = maxChain;
    this.tcpEstablishedMs = timeout('tcpEstablishedMs', opts.tcpEstablishedMs, 600_000);
    this.tcpOpeningMs = timeout('tcpOpeningMs', opts.tcpOpeningMs, 60_000);
    this.tcpClosingMs = timeout('tcpClosingMs', opts.tcpClosingMs, 5_000);
    this.udpIdleMs = timeout('udpIdleMs', opts.udpIdleMs, 60_000);
    this.otherIdleMs = timeout('otherIdleMs', opts.otherIdleMs, 60_000);
    this.#hash = opts.hash ?? symmetricHash;
    this.#lru = new LRUCache<number, FlowEntry>({
      max,
      // Only evictions need bookkeeping; deletes and head replacements are done by us.
      dispose: (head, _key, reason) => {
        if (reason !== 'evict') return;
        for (let e: FlowEntry | undefined = head; e !== undefined; e = e.next) {
          e.linked = false;
          this.size--;
          this.evicted++;
        }
      },
    });
  }

  setNow(now: number): void {
    this.now = now;
  }

  /** Number of chains (LRU keys). */
  get chains(): number {
    return this.#lru.size;
  }

  stats(): FlowCacheStats {
    return { flows: this.size, chains: this.#lru.size, evicted: this.evicted, expired: this.expired, chainFull: this.chainFull };
  }

  /**
   * The entry for a packet with `key` leaving `from` / entering `to`, or undefined
   * (miss). Sets `reverse`. Expired entries are removed on the way; an entry whose
   * key matches but whose endpoints do not (the endpoint was replaced) is stale and
   * removed too.
   */
  lookup(key: FlowKey, from: Endpoint | undefined, to: Endpoint | undefined): FlowEntry | undefined {
    const h = this.#hash(key);
    let e = this.#lru.get(h);
    const now = this.now;
    while (e !== undefined) {
      const next = e.next;
      if (e.equals(key)) {
        if (e.state === FlowState.Pending) {
          // A pending entry for other endpoints is left to resolve; create() replaces it.
          if (e.from === from && e.to === to) {
            this.reverse = false;
            return e;
          }
        } else if (e.expiresAt <= now) {
          this.#unlink(e);
          this.expired++;
        } else if (e.from !== from || e.to !== to) {
          this.#unlink(e);
        } else {
          this.reverse = false;
          return e;
        }
        e = next;
        continue;
      }
      if ((e.state === FlowState.Allowed || e.state === FlowState.Revoked) && e.isReverseOf(key)) {
        if (e.expiresAt <= now || e.from !== to || e.to !== from) {
          this.#unlink(e);
          if (e.expiresAt <= now) this.expired++;
          e = next;
          continue;
        }
        this.reverse = true;
        return e;
      }
      e = next;
    }
    return undefined;
  }

  /**
   * The unexpired settled entry of the flow `key` belongs to, either direction (a
   * reply only of an Allowed/Revoked entry), ignoring endpoints and recency. For
   * ICMP errors, whose quoted packet names the flow.
   */
  peekFlow(key: FlowKey): FlowEntry | undefined {
    for (let e = this.#lru.peek(this.#hash(key)); e !== undefined; e = e.next) {
      if (e.state === FlowState.Pending || e.expiresAt <= this.now) continue;
      if (e.equals(key)) return e;
      if ((e.state === FlowState.Allowed || e.state === FlowState.Revoked) && e.isReverseOf(key)) return e;
    }
    return undefined;
  }

  /** The entry with exactly this key (either state), without touching recency or expiry. */
  peekExact(key: FlowKey): FlowEntry | undefined {
    for (let e = this.#lru.peek(this.#hash(key)); e !== undefined; e = e.next) if (e.equals(key)) return e;
    return undefined;
  }

  /** A new Pending entry for `key`, linked; undefined when its chain is full of pending entries. */
  create(key: FlowKey, from: Endpoint | undefined, to: Endpoint | undefined): FlowEntry | undefined {
    const e = new FlowEntry();
    e.copyFrom(key);
    e.hashKey = this.#hash(key);
    e.from = from;
    e.to = to;
    e.created = e.lastSeen = this.now;
    return this.link(e) ? e : undefined;
  }

  /**
   * Links `e` into its chain (again, after an eviction), replacing any linked entry
   * with the same key. A full chain gives up its least recently seen settled entry;
   * if all are pending, `e` is not linked and false is returned.
   */
  link(e: FlowEntry): boolean {
    if (e.linked) return true;
    const h = e.hashKey;
    const head = this.#lru.get(h);
    let n = 0;
    let victim: FlowEntry | undefined;
    for (let c = head; c !== undefined; c = c.next) {
      if (c.equals(e)) {
        this.#unlink(c);
        return this.link(e);
      }
      n++;
      if (c.state !== FlowState.Pending && (victim === undefined || c.lastSeen < victim.lastSeen)) victim = c;
    }
    if (n >= this.maxChain) {
      this.chainFull++;
      if (victim === undefined) return false;
      this.#unlink(victim);
      return this.link(e);
    }
    e.next = undefined;
    e.linked = true;
    this.size++;
    if (head === undefined) {
      this.#lru.set(h, e);
    } else {
      // Append after the head: the LRU value stays the same object.
      e.next = head.next;
      head.next = e;
    }
    return true;
  }

  /** Removes `e` from the cache (no-op when not linked). */
  remove(e: FlowEntry): void {
    this.#unlink(e);
  }

  /** Sets the idle expiry of a settled entry from its protocol and TCP state (not for closing TCP). */
  refreshExpiry(e: FlowEntry): void {
    if ((e.tcp & TcpBits.Closing) !== 0) return;
    e.expiresAt = this.now + this.#idleOf(e);
  }

  /**
   * Counts a packet of `len` bytes on `e` (reverse: reply direction) and advances
   * TCP state with its flags: FIN both ways or RST -> closing (expires after
   * tcpClosingMs, not extended); a SYN without ACK on a closing entry starts over.
   */
  account(e: FlowEntry, reverse: boolean, len: number, tcpFlags: number): void {
    if (reverse) {
      e.revPackets++;
      e.revBytes += len;
    } else {
      e.fwdPackets++;
      e.fwdBytes += len;
    }
    const now = this.now;
    e.lastSeen = now;
    if (e.protocol === IpProto.TCP) {
      let t = e.tcp;
      if ((t & TcpBits.Closing) !== 0 && (tcpFlags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN) t = 0;
      if (reverse) t |= TcpBits.SeenReverse;
      if ((tcpFlags & TcpFlag.FIN) !== 0) t |= reverse ? TcpBits.FinReverse : TcpBits.FinForward;
      if ((tcpFlags & TcpFlag.RST) !== 0) t |= TcpBits.Rst;
      if ((t & TcpBits.Closing) === 0 &&
          ((t & TcpBits.Rst) !== 0 || (t & (TcpBits.FinForward | TcpBits.FinReverse)) === (TcpBits.FinForward | TcpBits.FinReverse))) {
        t |= TcpBits.Closing;
        e.tcp = t;
        e.expiresAt = now + this.tcpClosingMs;
        return;
      }
      e.tcp = t;
      if ((t & TcpBits.Closing) !== 0) return;
      e.expiresAt = now + ((t & TcpBits.SeenReverse) !== 0 ? this.tcpEstablishedMs : this.tcpOpeningMs);
      return;
    }
    e.expiresAt = now + (e.protocol === IpProto.UDP || e.protocol === UDPLITE || e.protocol === IpProto.SCTP
      ? this.udpIdleMs : this.otherIdleMs);
  }

  /** The hash keys of all chains, most recently used first (a dump for sweeps and revalidation). */
  dumpKeys(): number[] {
    return [...this.#lru.keys()];
  }

  /**
   * Visits the entries of the chains `keys[start..end)` (those still present),
   * without touching recency. `visit` may remove entries of the chain.
   */
  forEachIn(keys: readonly number[], start: number, end: number, visit: (e: FlowEntry) => void): void {
    const chain = this.#chainScratch;
    for (let i = start; i < end && i < keys.length; i++) {
      let n = 0;
      for (let e = this.#lru.peek(keys[i]); e !== undefined; e = e.next) chain[n++] = e;
      for (let j = 0; j < n; j++) {
        const e = chain[j];
        chain[j] = undefined!;
        if (e.linked) visit(e);
      }
    }
  }

  /** All linked entries, most recently used chain first (for /flows and tests). */
  *entries(): IterableIterator<FlowEntry> {
    for (const head of this.#lru.values()) {
      for (let e: FlowEntry | undefined = head; e !== undefined; e = e.next) yield e;
    }
  }

  clear(): void {
    for (const e of this.entries()) e.linked = false;
    this.#lru.clear();
    this.size = 0;
  }

  #idleOf(e: FlowEntry): number {
    switch (e.protocol) {
      case IpProto.TCP: return (e.tcp & TcpBits.SeenReverse) !== 0 ? this.tcpEstablishedMs : this.tcpOpeningMs;
      case IpProto.UDP: case UDPLITE: case IpProto.SCTP: return this.udpIdleMs;
      default: return this.otherIdleMs;
    }
  }

  #unlink(e: FlowEntry): void {
    if (!e.linked) return;
    const h = e.hashKey;
    const head = this.#lru.peek(h);
    e.linked = false;
    this.size--;
    if (head === e) {
      const next = e.next;
      e.next = undefined;
      if (next === undefined) this.#lru.delete(h);
      else this.#lru.set(h, next);
      return;
    }
    for (let c = head; c !== undefined; c = c.next) {
      if (c.next === e) {
        c.next = e.next;
        e.next = undefined;
        return;
      }
    }
  }
}
