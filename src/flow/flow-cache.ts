// The stateful flow cache: FlowKey -> flow, conntrack-like, as a struct of
// arrays. A flow is a slot number; its fields are typed-array columns, so a
// million cached flows are ~55 MB of flat memory and no objects for the GC.
//
//   key          kind Int32 (family|proto|icmp type|code), ports Int32
//                (src<<16|dst), src/dst Int32 (IPv4 addresses; for IPv6 src is a
//                row of the v6 side table holding all 8 words, dst unused)
//   hash table   buckets Int32 (pow2 >= capacity) -> chain through next Int32.
//                The hash (FlowKey.hashSymmetric) is not stored: a lookup
//                compares keys; creating, unlinking and rehashing recompute it
//                from the key.
//   state        flags Uint8 (FlowState | LINKED | REVALIDATING | REFERENCED),
//                tcp Uint8
//   verdict      verdict Int32: an id in the VerdictTable (generation, and
//                decision, policy and rule per direction, interned)
//   endpoints    from/to Uint16 (EndpointIndex; 0 = the remote side)
//   time         expires Uint32, ms relative to a base (rebased before it
//                overflows; 0xffffffff = never, as while pending)
//   counters     fwd/rev packets and bytes Uint32; the rare carry past 2^32 in
//                a side map (#carry), so the totals stay exact
//
// 50 bytes a slot, plus 4 per bucket (~4.2 a flow at max 1,000,000): ~54 bytes a
// flow (66 with the exact LRU list and the lastSeen column this replaced).
//
// Slot 0 is never linked: the "detached" scratch slot where a flow that cannot
// be cached (its chain is full of pending flows) is decided and logged anyway.
// The columns are views of one ArrayBuffer, reallocated by doubling up to max + 1
// slots; nothing is preallocated for max. (One buffer rather than one per column: a
// doubling frees one big mapping the allocator returns to the OS, where fifteen
// separate 1-4 MB buffers were partly kept by the malloc heap: 4-20 B a flow of RSS.)
//
// Both directions of a flow hash alike, so one lookup finds the entry for a
// packet or for its reply. An Allowed entry matches its own key and its reverse
// (replies pass), and so does a Revoked one (a connection a policy change
// denied: both directions drop); a Denied entry matches only its own key (a
// reply-direction packet is a flow of its own and gets its own verdict).
//
// Bounded by `max` flows and by `maxChain` flows per hash value. A full cache
// evicts by CLOCK (second chance), an approximation of LRU without a list:
// a hit sets the flow's REFERENCED bit (one byte written, no list to relink); a
// hand walks the slot numbers, clearing set bits, and evicts the first settled
// flow whose bit is clear. A new flow starts with its bit clear, in the slot just
// evicted, right behind the hand: it has a whole turn of the hand to be hit again,
// and a flood of one-packet flows evicts its own kind, not flows in use. Pending
// flows are passed over (evicted only if the walk finds nothing else), and the
// walk is bounded (CLOCK_SCAN slots): past that, the last settled flow it passed
// goes even though its bit was set. Each bit the hand clears was set by a hit,
// so the walk is O(1) a flow amortized.
//
// There is no last-seen column: a flow's last packet is `expires` minus the idle
// timeout of its protocol and TCP state, as account() set it (see lastSeen()).
//
// Expiry is lazy — checked on lookup against a coarse clock the owner advances
// once per batch (setNow) — plus a periodic sweep (forEachSlot) over the slot
// numbers. No per-entry timers. Lookups, hits and counting allocate nothing.

import type { Endpoint } from '../dataplane/endpoint.js';
import { FlowKey } from '../packet/flow-key.js';
import { icmpPeerType } from '../packet/icmp.js';
import { TcpFlag } from '../packet/tcp.js';
import { IpProto } from '../packet/proto.js';
import type { Decision } from '../workers/batch-format.js';
import { EndpointIndex } from './endpoint-index.js';
import { FlowEntry, FlowState, TcpBits } from './flow-entry.js';
import { NO_VERDICT, VerdictTable, type VerdictTuple } from './verdict-table.js';

export interface FlowCacheOptions {
  /** Most flows kept; past it a flow not hit lately is evicted (CLOCK; default 1,000,000). */
  max?: number;
  /** Most entries per hash value (default 8); bounds the cost of hash collisions. */
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
  /** Slots allocated at first (default 1024, at most max + 1); the columns double from there. */
  initialSlots?: number;
}

export interface FlowCacheStats {
  flows: number;
  /** Distinct hash values among the cached flows. */
  chains: number;
  evicted: number;
  expired: number;
  chainFull: number;
}

function timeout(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v > 0) || v >= MAX_REL) {
    throw new TypeError(`FlowCache: ${name} must be a positive number of ms below 2^31, got ${String(v)}`);
  }
  return v;
}

/** UDP-Lite (RFC 3828): ports like UDP. */
const UDPLITE = 136;

/** The scratch slot for flows decided but not cached. */
export const DETACHED = 0;

/** flags: the low 3 bits are the FlowState. */
const STATE_MASK = 7;
const LINKED = 8;
const REVALIDATING = 16;
/** flags: hit since the clock hand last passed (second chance). */
const REFERENCED = 32;

/**
 * Most slots the clock hand visits for one eviction before it gives up on finding a flow
 * with a clear bit (a run of flows all hit since its last turn): tens of µs at worst, rare.
 */
export const CLOCK_SCAN = 16_384;

/** `expires` of a flow that never expires (pending). */
const NEVER = 0xffffffff;
/** Relative times are rebased once they pass this (so now + any timeout fits a Uint32). */
const MAX_REL = 2 ** 31;

// Counters, for the carry map's keys (slot * 4 + which).
const FWD_PACKETS = 0, FWD_BYTES = 1, REV_PACKETS = 2, REV_BYTES = 3;

/** Bytes a slot over all the columns: 11 of 4 bytes, 2 of 2, 2 of 1. */
const SLOT_BYTES = 11 * 4 + 2 * 2 + 2;

/** Words per row of the IPv6 side table: src0..3, dst0..3. */
const V6_WORDS = 8;

const symmetricHash = (k: FlowKey): number => k.hashSymmetric();

/** kind column: family, protocol, ICMP type and code of a key. */
function kindOf(family: number, protocol: number, icmpType: number, icmpCode: number): number {
  return (family << 24) | (protocol << 16) | (icmpType << 8) | icmpCode;
}

/** The kind of `k` reversed: an echo-style ICMP type becomes its peer (FlowKey.reverse). */
function reverseKindOf(k: FlowKey): number {
  let type = k.icmpType;
  if (k.protocol === IpProto.ICMP || k.protocol === IpProto.ICMPv6) {
    const peer = icmpPeerType(k.family, type);
    if (peer >= 0) type = peer;
  }
  return kindOf(k.family, k.protocol, type, k.icmpCode);
}

function grown<T extends Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

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
  /** Set by lookup(): the packet is in the reply direction of the returned slot. */
  reverse = false;
  /** Flows linked (cached). */
  size = 0;
  evicted = 0;
  expired = 0;
  chainFull = 0;
  /**
   * Called when a Pending flow leaves the cache other than by remove() — evicted, or replaced
   * by a new flow with the same key — so its owner can detach its in-flight handle.
   */
  onPendingUnlinked: ((slot: number) => void) | undefined = undefined;

  readonly endpoints = new EndpointIndex();
  readonly verdicts = new VerdictTable();
  readonly #hashFn: (key: FlowKey) => number;

  // --- columns (see the header) ---
  #capacity: number;
  #next: Int32Array = new Int32Array(0);
  #kind: Int32Array = new Int32Array(0);
  #ports: Int32Array = new Int32Array(0);
  #src: Int32Array = new Int32Array(0);
  #dst: Int32Array = new Int32Array(0);
  #flags: Uint8Array = new Uint8Array(0);
  #tcp: Uint8Array = new Uint8Array(0);
  #verdict: Int32Array = new Int32Array(0);
  #from: Uint16Array = new Uint16Array(0);
  #to: Uint16Array = new Uint16Array(0);
  #expires: Uint32Array = new Uint32Array(0);
  #fwdPackets: Uint32Array = new Uint32Array(0);
  #revPackets: Uint32Array = new Uint32Array(0);
  #fwdBytes: Uint32Array = new Uint32Array(0);
  #revBytes: Uint32Array = new Uint32Array(0);
  /** Multiples of 2^32 the Uint32 counters overflowed into, by slot * 4 + counter; rarely non-empty. */
  readonly #carry = new Map<number, number>();

  #buckets: Int32Array;
  #mask: number;
  #chains = 0;
  /** Slots ever used (1.. are allocated in order, then recycled through #freeHead). */
  #used = 1;
  #freeHead = -1;
  /** The clock hand: the next slot the eviction walk looks at (1..#used-1). */
  #hand = 1;

  // IPv6 side table: rows of V6_WORDS, recycled through a free stack.
  #v6 = new Int32Array(16 * V6_WORDS);
  #v6Used = 0;
  #v6Free: number[] = [];

  /** Times are stored as ms since #base; #nowRel = now - #base. */
  #base = 0;
  #nowRel = 0;

  readonly #tmp = new FlowKey();
  readonly #hashKey = new FlowKey();

  constructor(opts: FlowCacheOptions = {}) {
    const max = opts.max ?? 1_000_000;
    if (!Number.isInteger(max) || max < 1 || max >= 2 ** 30) throw new TypeError(`FlowCache: max must be a positive integer below 2^30, got ${String(max)}`);
    const maxChain = opts.maxChain ?? 8;
    if (!Number.isInteger(maxChain) || maxChain < 1) throw new TypeError(`FlowCache: maxChain must be a positive integer, got ${String(maxChain)}`);
    const initial = opts.initialSlots ?? 1024;
    if (!Number.isInteger(initial) || initial < 2) throw new TypeError(`FlowCache: initialSlots must be an integer >= 2, got ${String(initial)}`);
    this.max = max;
    this.maxChain = maxChain;
    this.tcpEstablishedMs = timeout('tcpEstablishedMs', opts.tcpEstablishedMs, 600_000);
    this.tcpOpeningMs = timeout('tcpOpeningMs', opts.tcpOpeningMs, 60_000);
    this.tcpClosingMs = timeout('tcpClosingMs', opts.tcpClosingMs, 5_000);
    this.udpIdleMs = timeout('udpIdleMs', opts.udpIdleMs, 60_000);
    this.otherIdleMs = timeout('otherIdleMs', opts.otherIdleMs, 60_000);
    this.#hashFn = opts.hash ?? symmetricHash;
    const n = Math.min(initial, max + 1);
    this.#capacity = n;
    this.#allocColumns(n);
    this.#buckets = new Int32Array(bucketsFor(n)).fill(-1);
    this.#mask = this.#buckets.length - 1;
  }

  setNow(now: number): void {
    this.now = now;
    let rel = Math.floor(now - this.#base);
    if (rel >= MAX_REL) {
      this.#rebase(rel);
      rel = Math.floor(now - this.#base);
    }
    this.#nowRel = rel > 0 ? rel : 0;
  }

  /** Distinct hash values among the cached flows. */
  get chains(): number {
    return this.#chains;
  }

  /** Slots the columns have room for now (grows by doubling up to max + 1). */
  get capacity(): number {
    return this.#capacity;
  }

  stats(): FlowCacheStats {
    return { flows: this.size, chains: this.#chains, evicted: this.evicted, expired: this.expired, chainFull: this.chainFull };
  }

  // --- the per-packet path ---------------------------------------------------------

  /**
   * The slot of the flow of a packet with `key` leaving `from` / entering `to`, or
   * -1 (miss). Sets `reverse`; a hit sets the flow's reference bit. Expired flows
   * are removed on the way; a flow whose key matches but whose endpoints do not (the
   * endpoint was replaced) is stale and removed too. Allocates nothing.
   */
  lookup(key: FlowKey, from: Endpoint | undefined, to: Endpoint | undefined): number {
    const h = this.#hashFn(key);
    const kind = kindOf(key.family, key.protocol, key.icmpType, key.icmpCode);
    const ports = (key.srcPort << 16) | key.dstPort;
    const rkind = reverseKindOf(key);
    const rports = (key.dstPort << 16) | key.srcPort;
    const now = this.#nowRel;
    const eps = this.endpoints;
    let s = this.#buckets[h & this.#mask];
    while (s >= 0) {
      const next = this.#next[s];
      const state = this.#flags[s] & STATE_MASK;
      if (this.#kind[s] === kind && this.#ports[s] === ports && this.#sameAddrs(s, key, false)) {
        if (state === FlowState.Pending) {
          // A pending flow for other endpoints is left to resolve; create() replaces it.
          if (eps.at(this.#from[s]) === from && eps.at(this.#to[s]) === to) return this.#hit(s, false);
        } else if (this.#expires[s] <= now) {
          this.#unlink(s);
          this.expired++;
        } else if (eps.at(this.#from[s]) !== from || eps.at(this.#to[s]) !== to) {
          this.#unlink(s);
        } else {
          return this.#hit(s, false);
        }
      } else if ((state === FlowState.Allowed || state === FlowState.Revoked) &&
          this.#kind[s] === rkind && this.#ports[s] === rports && this.#sameAddrs(s, key, true)) {
        if (this.#expires[s] <= now) {
          this.#unlink(s);
          this.expired++;
        } else if (eps.at(this.#from[s]) !== to || eps.at(this.#to[s]) !== from) {
          this.#unlink(s);
        } else {
          return this.#hit(s, true);
        }
      }
      s = next;
    }
    return -1;
  }

  /**
   * Counts a packet of `len` bytes on slot `s` (reverse: reply direction) and advances
   * TCP state with its flags: FIN both ways or RST -> closing (expires after
   * tcpClosingMs, not extended); a SYN without ACK on a closing flow starts over.
   */
  account(s: number, reverse: boolean, len: number, tcpFlags: number): void {
    if (reverse) {
      if (this.#revPackets[s] === 0xffffffff) this.#overflow(s, REV_PACKETS);
      this.#revPackets[s]++;
      const b = this.#revBytes[s] + len;
      if (b > 0xffffffff) this.#overflow(s, REV_BYTES);
      this.#revBytes[s] = b;
    } else {
      if (this.#fwdPackets[s] === 0xffffffff) this.#overflow(s, FWD_PACKETS);
      this.#fwdPackets[s]++;
      const b = this.#fwdBytes[s] + len;
      if (b > 0xffffffff) this.#overflow(s, FWD_BYTES);
      this.#fwdBytes[s] = b;
    }
    const now = this.#nowRel;
    const protocol = (this.#kind[s] >>> 16) & 0xff;
    if (protocol === IpProto.TCP) {
      let t = this.#tcp[s];
      if ((t & TcpBits.Closing) !== 0 && (tcpFlags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN) t = 0;
      if (reverse) t |= TcpBits.SeenReverse;
      if ((tcpFlags & TcpFlag.FIN) !== 0) t |= reverse ? TcpBits.FinReverse : TcpBits.FinForward;
      if ((tcpFlags & TcpFlag.RST) !== 0) t |= TcpBits.Rst;
      if ((t & TcpBits.Closing) === 0 &&
          ((t & TcpBits.Rst) !== 0 || (t & (TcpBits.FinForward | TcpBits.FinReverse)) === (TcpBits.FinForward | TcpBits.FinReverse))) {
        t |= TcpBits.Closing;
        this.#tcp[s] = t;
        this.#expires[s] = now + this.tcpClosingMs;
        return;
      }
      this.#tcp[s] = t;
      if ((t & TcpBits.Closing) !== 0) return;
      this.#expires[s] = now + ((t & TcpBits.SeenReverse) !== 0 ? this.tcpEstablishedMs : this.tcpOpeningMs);
      return;
    }
    this.#expires[s] = now + (protocol === IpProto.UDP || protocol === UDPLITE || protocol === IpProto.SCTP
      ? this.udpIdleMs : this.otherIdleMs);
  }

  // --- lookups that do not count as use ---------------------------------------------

  /**
   * The unexpired settled flow `key` belongs to, either direction (a reply only of an
   * Allowed/Revoked flow), ignoring endpoints and recency; -1 if none. For ICMP
   * errors, whose quoted packet names the flow.
   */
  peekFlow(key: FlowKey): number {
    const h = this.#hashFn(key);
    const kind = kindOf(key.family, key.protocol, key.icmpType, key.icmpCode);
    const ports = (key.srcPort << 16) | key.dstPort;
    const rkind = reverseKindOf(key);
    const rports = (key.dstPort << 16) | key.srcPort;
    for (let s = this.#buckets[h & this.#mask]; s >= 0; s = this.#next[s]) {
      const state = this.#flags[s] & STATE_MASK;
      if (state === FlowState.Pending || this.#expires[s] <= this.#nowRel) continue;
      if (this.#kind[s] === kind && this.#ports[s] === ports && this.#sameAddrs(s, key, false)) return s;
      if ((state === FlowState.Allowed || state === FlowState.Revoked) &&
          this.#kind[s] === rkind && this.#ports[s] === rports && this.#sameAddrs(s, key, true)) return s;
    }
    return -1;
  }

  /** The slot with exactly this key (any state), without touching recency or expiry; -1 if none. */
  peekExact(key: FlowKey): number {
    const h = this.#hashFn(key);
    const kind = kindOf(key.family, key.protocol, key.icmpType, key.icmpCode);
    const ports = (key.srcPort << 16) | key.dstPort;
    for (let s = this.#buckets[h & this.#mask]; s >= 0; s = this.#next[s]) {
      if (this.#kind[s] === kind && this.#ports[s] === ports && this.#sameAddrs(s, key, false)) return s;
    }
    return -1;
  }

  // --- creating and removing flows -----------------------------------------------------

  /**
   * A new Pending flow for `key` (reference bit clear), replacing a linked flow with the
   * same key; -1 when its chain (flows of the same hash) is full of pending flows or the
   * endpoint index is full. A full chain gives up a settled flow — one not hit since the
   * hand passed if it has any, the one expiring first among those — and a full cache the
   * flow the clock hand picks (#victim).
   */
  create(key: FlowKey, from: Endpoint | undefined, to: Endpoint | undefined): number {
    const h = this.#hashFn(key);
    const kind = kindOf(key.family, key.protocol, key.icmpType, key.icmpCode);
    const ports = (key.srcPort << 16) | key.dstPort;
    for (;;) {
      let n = 0, victim = -1, same = -1;
      for (let c = this.#buckets[h & this.#mask]; c >= 0; c = this.#next[c]) {
        if (this.#kind[c] === kind && this.#ports[c] === ports && this.#sameAddrs(c, key, false)) {
          same = c;
          break;
        }
        if (this.#hashOf(c) !== h) continue; // another hash value in the same bucket
        n++;
        if ((this.#flags[c] & STATE_MASK) !== FlowState.Pending && (victim < 0 || this.#colderThan(c, victim))) victim = c;
      }
      if (same >= 0) {
        this.#unlinkNotify(same);
        continue;
      }
      if (n >= this.maxChain) {
        this.chainFull++;
        if (victim < 0) return -1;
        this.#unlinkNotify(victim);
        continue;
      }
      const fromIdx = this.endpoints.ref(from);
      if (fromIdx < 0) return -1;
      const toIdx = this.endpoints.ref(to);
      if (toIdx < 0) {
        this.endpoints.unref(fromIdx);
        return -1;
      }
      const s = this.#alloc();
      this.#init(s, key, fromIdx, toIdx);
      this.#link(s, h);
      return s;
    }
  }

  /**
   * Caches a flow given as an object (e.g. read out of another cache): its key, endpoints,
   * state, verdict, TCP state, counters and expiry, as create() would link it (its lastSeen
   * follows from its expiry; `lastSeen` and `created` are not kept). Returns its slot, or -1
   * as create() does.
   */
  insert(e: FlowEntry): number {
    const s = this.create(e, e.from, e.to);
    if (s < 0) return s;
    this.setState(s, e.state);
    this.setVerdict(s, e.generation, e.egress, e.egressPolicy, e.egressRule, e.ingress, e.ingressPolicy, e.ingressRule);
    this.#tcp[s] = e.tcp;
    this.#setCounter(this.#fwdPackets, s, FWD_PACKETS, e.fwdPackets);
    this.#setCounter(this.#fwdBytes, s, FWD_BYTES, e.fwdBytes);
    this.#setCounter(this.#revPackets, s, REV_PACKETS, e.revPackets);
    this.#setCounter(this.#revBytes, s, REV_BYTES, e.revBytes);
    this.#expires[s] = e.expiresAt === Infinity ? NEVER : Math.min(NEVER - 1, Math.max(0, Math.floor(e.expiresAt - this.#base)));
    return s;
  }

  /**
   * Fills the detached slot (DETACHED, never linked) with a new Pending flow for `key`:
   * for a flow that is decided but cannot be cached. Call releaseDetached() when done.
   */
  detach(key: FlowKey, from: Endpoint | undefined, to: Endpoint | undefined): number {
    this.releaseDetached();
    const fromIdx = this.endpoints.ref(from);
    const toIdx = this.endpoints.ref(to);
    this.#init(DETACHED, key, Math.max(fromIdx, 0), Math.max(toIdx, 0));
    return DETACHED;
  }

  /** Clears the detached slot (drops its endpoint and verdict references). */
  releaseDetached(): void {
    this.#clearRefs(DETACHED);
    this.#flags[DETACHED] = 0;
  }

  /** Removes slot `s` from the cache (no-op when not linked). */
  remove(s: number): void {
    if ((this.#flags[s] & LINKED) !== 0) this.#unlink(s);
  }

  /** Is slot `s` a cached flow? */
  linked(s: number): boolean {
    return (this.#flags[s] & LINKED) !== 0;
  }

  // --- fields of a slot ----------------------------------------------------------------

  state(s: number): FlowState {
    return (this.#flags[s] & STATE_MASK) as FlowState;
  }

  setState(s: number, state: FlowState): void {
    this.#flags[s] = (this.#flags[s] & ~STATE_MASK) | state;
  }

  /** A revalidation of this flow is in flight (it is not queued twice). Cleared when the slot is freed. */
  revalidating(s: number): boolean {
    return (this.#flags[s] & REVALIDATING) !== 0;
  }

  setRevalidating(s: number, on: boolean): void {
    this.#flags[s] = on ? this.#flags[s] | REVALIDATING : this.#flags[s] & ~REVALIDATING;
  }

  generation(s: number): number {
    return this.verdicts.get(this.#verdict[s]).generation;
  }

  from(s: number): Endpoint | undefined {
    return this.endpoints.at(this.#from[s]);
  }

  to(s: number): Endpoint | undefined {
    return this.endpoints.at(this.#to[s]);
  }

  /** Does slot `s` have a local source / destination (the Side mask of its flow)? */
  hasFrom(s: number): boolean {
    return this.#from[s] !== 0;
  }

  hasTo(s: number): boolean {
    return this.#to[s] !== 0;
  }

  tcp(s: number): number {
    return this.#tcp[s];
  }

  /** Expiry time on the clock of setNow (Infinity: never, as while pending). */
  expiresAt(s: number): number {
    const e = this.#expires[s];
    return e === NEVER ? Infinity : this.#base + e;
  }

  isExpired(s: number): boolean {
    return this.#expires[s] <= this.#nowRel;
  }

  /**
   * When slot `s` last saw a packet, on the clock of setNow, derived from its expiry (there
   * is no column for it): `expires` minus the idle timeout of its protocol and TCP state,
   * which is exact for the last account() and refreshExpiry() (a flow's verdict counts as
   * seeing it). A closing TCP flow's expiry is not extended, so for it this is when it
   * started closing (the FIN that completed the pair, or the RST); later packets (the last
   * ACK) do not show. A flow with no expiry yet (pending) reads as seen now.
   */
  lastSeen(s: number): number {
    const e = this.#expires[s];
    if (e === NEVER) return this.now;
    return this.#base + e - ((this.#tcp[s] & TcpBits.Closing) !== 0 ? this.tcpClosingMs : this.#idleMs(s));
  }

  /** Has slot `s` been hit since the clock hand or the owner's sweep (age()) last passed it? */
  referenced(s: number): boolean {
    return (this.#flags[s] & REFERENCED) !== 0;
  }

  /**
   * Clears slot `s`'s REFERENCED bit, as the clock hand does. The owner's periodic sweep calls it,
   * so "referenced" means "hit since the last sweep" even while the cache is not full and the
   * hand stands still: dumps (revalidation after a policy change, `sluice flows`) then list the
   * flows in use now first, not every flow that was ever hit twice.
   */
  age(s: number): void {
    this.#flags[s] &= ~REFERENCED;
  }

  /** The interned verdict tuple of slot `s`. */
  verdict(s: number): VerdictTuple {
    return this.verdicts.get(this.#verdict[s]);
  }

  /** Installs what decided the verdict of slot `s`, computed under `generation`. */
  setVerdict(s: number, generation: number, egress: Decision, egressPolicy: string | undefined, egressRule: number,
    ingress: Decision, ingressPolicy: string | undefined, ingressRule: number): void {
    const id = this.verdicts.ref(generation, egress, egressPolicy, egressRule, ingress, ingressPolicy, ingressRule);
    this.verdicts.unref(this.#verdict[s]);
    this.#verdict[s] = id;
  }

  /** Sets the idle expiry of a settled flow from its protocol and TCP state (not for closing TCP). */
  refreshExpiry(s: number): void {
    if ((this.#tcp[s] & TcpBits.Closing) !== 0) return;
    this.#expires[s] = this.#nowRel + this.#idleMs(s);
  }

  /** Copies the key of slot `s` into `out`. */
  readKey(s: number, out: FlowKey): FlowKey {
    const kind = this.#kind[s], ports = this.#ports[s];
    out.family = kind >>> 24;
    out.protocol = (kind >>> 16) & 0xff;
    out.icmpType = (kind >>> 8) & 0xff;
    out.icmpCode = kind & 0xff;
    out.srcPort = ports >>> 16;
    out.dstPort = ports & 0xffff;
    if (out.family === 6) {
      const v6 = this.#v6, r = this.#src[s] * V6_WORDS;
      out.src0 = v6[r]; out.src1 = v6[r + 1]; out.src2 = v6[r + 2]; out.src3 = v6[r + 3];
      out.dst0 = v6[r + 4]; out.dst1 = v6[r + 5]; out.dst2 = v6[r + 6]; out.dst3 = v6[r + 7];
    } else {
      out.src0 = this.#src[s];
      out.dst0 = this.#dst[s];
      out.src1 = out.src2 = out.src3 = out.dst1 = out.dst2 = out.dst3 = 0;
    }
    return out;
  }

  /** Writes the key of slot `s` as FlowKey.writeTo does (FLOW_KEY_WORDS words at `off`). */
  writeKey(s: number, a: Int32Array, off: number): void {
    this.readKey(s, this.#tmp).writeTo(a, off);
  }

  /**
   * Does slot `s` still hold the flow written at `off` of a request (FlowKey.writeTo words,
   * then the Side mask)? For answers that come back after the slot may have been reused.
   */
  matches(s: number, a: Int32Array, off: number, sides: number): boolean {
    if ((this.#flags[s] & LINKED) === 0) return false;
    if (((this.#from[s] !== 0 ? 1 : 0) | (this.#to[s] !== 0 ? 2 : 0)) !== sides) return false;
    const k = this.readKey(s, this.#tmp);
    return a[off] === ((k.family << 8) | k.protocol) && a[off + 9] === this.#ports[s] && a[off + 10] === ((k.icmpType << 8) | k.icmpCode) &&
      a[off + 1] === k.src0 && a[off + 2] === k.src1 && a[off + 3] === k.src2 && a[off + 4] === k.src3 &&
      a[off + 5] === k.dst0 && a[off + 6] === k.dst1 && a[off + 7] === k.dst2 && a[off + 8] === k.dst3;
  }

  /** The flow in slot `s` as an object (a copy: for flow logs, /flows and tests). */
  read(s: number, into: FlowEntry = new FlowEntry()): FlowEntry {
    this.readKey(s, into);
    const v = this.verdict(s);
    into.slot = (this.#flags[s] & LINKED) !== 0 ? s : -1;
    into.state = this.state(s);
    into.generation = v.generation;
    into.from = this.from(s);
    into.to = this.to(s);
    into.lastSeen = into.created = this.lastSeen(s); // (the cache does not keep when a flow was created)
    into.expiresAt = this.expiresAt(s);
    into.tcp = this.#tcp[s];
    into.fwdPackets = this.#counter(this.#fwdPackets, s, FWD_PACKETS);
    into.fwdBytes = this.#counter(this.#fwdBytes, s, FWD_BYTES);
    into.revPackets = this.#counter(this.#revPackets, s, REV_PACKETS);
    into.revBytes = this.#counter(this.#revBytes, s, REV_BYTES);
    into.egress = v.egress;
    into.egressPolicy = v.egressPolicy;
    into.egressRule = v.egressRule;
    into.ingress = v.ingress;
    into.ingressPolicy = v.ingressPolicy;
    into.ingressRule = v.ingressRule;
    return into;
  }

  // --- walking the cache -------------------------------------------------------------------

  /**
   * The slots of all cached flows (a dump for revalidation): the flows hit since the clock
   * hand or the sweep last passed them (in use) first, then the others; each part newest first
   * roughly — backwards from the hand: newest created first while the cache has not been
   * full, and once it is, by when the hand last evicted into the slot (a slot freed by expiry
   * or removal and reused is out of that order). There is no exact order of use.
   */
  dumpSlots(): Int32Array {
    const out = new Int32Array(this.size);
    this.#dumpInto(out, this.#dumpInto(out, 0, REFERENCED), 0);
    return out;
  }

  /** Appends to `out` from `n` the linked slots whose REFERENCED bit is `ref`, backwards from the hand; returns the new length. */
  #dumpInto(out: Int32Array, n: number, ref: number): number {
    const flags = this.#flags, want = LINKED | ref;
    for (let s = this.#hand - 1; s >= 1 && n < out.length; s--) if ((flags[s] & (LINKED | REFERENCED)) === want) out[n++] = s;
    for (let s = this.#used - 1; s >= this.#hand && n < out.length; s--) if ((flags[s] & (LINKED | REFERENCED)) === want) out[n++] = s;
    return n;
  }

  /** Slots ever used: flows live in slots 1..slotsUsed-1 (the range a sweep walks). */
  get slotsUsed(): number {
    return this.#used;
  }

  /**
   * Visits the cached flows in slots [start, end), without touching recency; `visit` may remove
   * flows. A sweep walks slot numbers in slices (no dump: 4 MB at 1M flows); a slot freed and
   * reused between slices is visited as the flow it then holds.
   */
  forEachSlot(start: number, end: number, visit: (s: number) => void): void {
    for (let s = Math.max(1, start); s < end && s < this.#used; s++) if ((this.#flags[s] & LINKED) !== 0) visit(s);
  }

  /**
   * All cached slots, in the order of dumpSlots(), walked lazily (`sluice flows --limit 200` reads
   * ~200, not a dump of a million). The caller may remove flows; a flow cached meanwhile may be
   * missed or seen.
   */
  *slots(): IterableIterator<number> {
    for (const ref of [REFERENCED, 0]) {
      for (let s = this.#hand - 1; s >= 1; s--) if ((this.#flags[s] & (LINKED | REFERENCED)) === (LINKED | ref)) yield s;
      for (let s = this.#used - 1; s >= this.#hand; s--) if ((this.#flags[s] & (LINKED | REFERENCED)) === (LINKED | ref)) yield s;
    }
  }

  /** All cached flows as objects (copies), in the order of dumpSlots() (for /flows and tests). */
  *entries(): IterableIterator<FlowEntry> {
    for (const s of this.slots()) yield this.read(s);
  }

  clear(): void {
    for (let s = this.#used - 1; s >= 1; s--) if ((this.#flags[s] & LINKED) !== 0) this.#unlinkNotify(s);
  }

  // --- internals -----------------------------------------------------------------------------

  #hit(s: number, reverse: boolean): number {
    this.reverse = reverse;
    this.#flags[s] |= REFERENCED;
    return s;
  }

  /** The idle timeout of slot `s` by its protocol and TCP state (not closing; account() inlines it). */
  #idleMs(s: number): number {
    switch ((this.#kind[s] >>> 16) & 0xff) {
      case IpProto.TCP: return (this.#tcp[s] & TcpBits.SeenReverse) !== 0 ? this.tcpEstablishedMs : this.tcpOpeningMs;
      case IpProto.UDP: case UDPLITE: case IpProto.SCTP: return this.udpIdleMs;
      default: return this.otherIdleMs;
    }
  }

  /** A better victim than `b` when a chain is full: not hit since the hand passed, else expiring sooner. */
  #colderThan(a: number, b: number): boolean {
    const ra = this.#flags[a] & REFERENCED, rb = this.#flags[b] & REFERENCED;
    return ra !== rb ? ra === 0 : this.#expires[a] < this.#expires[b];
  }

  /** Does slot `s` hold the addresses of `k` (reversed: swapped)? Kind (so family) already equal. */
  #sameAddrs(s: number, k: FlowKey, reversed: boolean): boolean {
    if (k.family !== 6) {
      return reversed
        ? this.#src[s] === k.dst0 && this.#dst[s] === k.src0
        : this.#src[s] === k.src0 && this.#dst[s] === k.dst0;
    }
    const v6 = this.#v6, r = this.#src[s] * V6_WORDS;
    if (reversed) {
      return v6[r] === k.dst0 && v6[r + 1] === k.dst1 && v6[r + 2] === k.dst2 && v6[r + 3] === k.dst3 &&
        v6[r + 4] === k.src0 && v6[r + 5] === k.src1 && v6[r + 6] === k.src2 && v6[r + 7] === k.src3;
    }
    return v6[r] === k.src0 && v6[r + 1] === k.src1 && v6[r + 2] === k.src2 && v6[r + 3] === k.src3 &&
      v6[r + 4] === k.dst0 && v6[r + 5] === k.dst1 && v6[r + 6] === k.dst2 && v6[r + 7] === k.dst3;
  }

  /** A free slot: recycled, new, or (when max flows are cached) one the clock hand evicts. */
  #alloc(): number {
    if (this.size >= this.max) {
      this.evicted++;
      this.#unlinkNotify(this.#victim());
    }
    if (this.#freeHead >= 0) {
      const s = this.#freeHead;
      this.#freeHead = this.#next[s];
      return s;
    }
    if (this.#used === this.#capacity) this.#grow();
    return this.#used++;
  }

  #init(s: number, key: FlowKey, fromIdx: number, toIdx: number): void {
    this.#kind[s] = kindOf(key.family, key.protocol, key.icmpType, key.icmpCode);
    this.#ports[s] = (key.srcPort << 16) | key.dstPort;
    if (key.family === 6) {
      const row = this.#v6Free.length > 0 ? this.#v6Free.pop()! : this.#v6Row();
      const v6 = this.#v6, r = row * V6_WORDS;
      v6[r] = key.src0; v6[r + 1] = key.src1; v6[r + 2] = key.src2; v6[r + 3] = key.src3;
      v6[r + 4] = key.dst0; v6[r + 5] = key.dst1; v6[r + 6] = key.dst2; v6[r + 7] = key.dst3;
      this.#src[s] = row;
      this.#dst[s] = 0;
    } else {
      this.#src[s] = key.src0;
      this.#dst[s] = key.dst0;
    }
    this.#flags[s] = FlowState.Pending;
    this.#tcp[s] = 0;
    this.#verdict[s] = NO_VERDICT;
    this.#from[s] = fromIdx;
    this.#to[s] = toIdx;
    this.#expires[s] = NEVER;
    this.#fwdPackets[s] = this.#revPackets[s] = 0;
    this.#fwdBytes[s] = this.#revBytes[s] = 0;
    if (this.#carry.size > 0) for (let c = 0; c < 4; c++) this.#carry.delete(s * 4 + c);
  }

  /**
   * Adds packets counted elsewhere to a flow's counters, without touching its state: held then
   * dropped, or forwarded by the native fast path.
   */
  addCounts(s: number, reverse: boolean, packets: number, bytes: number): void {
    if (reverse) {
      this.#setCounter(this.#revPackets, s, REV_PACKETS, this.#counter(this.#revPackets, s, REV_PACKETS) + packets);
      this.#setCounter(this.#revBytes, s, REV_BYTES, this.#counter(this.#revBytes, s, REV_BYTES) + bytes);
    } else {
      this.#setCounter(this.#fwdPackets, s, FWD_PACKETS, this.#counter(this.#fwdPackets, s, FWD_PACKETS) + packets);
      this.#setCounter(this.#fwdBytes, s, FWD_BYTES, this.#counter(this.#fwdBytes, s, FWD_BYTES) + bytes);
    }
  }

  /** A Uint32 counter of slot `s` is about to pass 2^32: carry one into the side map. */
  #overflow(s: number, which: number): void {
    const k = s * 4 + which;
    this.#carry.set(k, (this.#carry.get(k) ?? 0) + 1);
  }

  /** The exact value of a counter column at `s`, carry included. */
  #counter(col: Uint32Array, s: number, which: number): number {
    const high = this.#carry.size > 0 ? this.#carry.get(s * 4 + which) ?? 0 : 0;
    return high * 2 ** 32 + col[s];
  }

  #setCounter(col: Uint32Array, s: number, which: number, v: number): void {
    const high = Math.floor(v / 2 ** 32);
    col[s] = v - high * 2 ** 32;
    if (high > 0) this.#carry.set(s * 4 + which, high);
    else if (this.#carry.size > 0) this.#carry.delete(s * 4 + which);
  }

  #v6Row(): number {
    const row = this.#v6Used++;
    if ((row + 1) * V6_WORDS > this.#v6.length) this.#v6 = grown(this.#v6, this.#v6.length * 2);
    return row;
  }

  /** Drops the references slot `s` holds (endpoints, verdict, IPv6 row). */
  #clearRefs(s: number): void {
    this.endpoints.unref(this.#from[s]);
    this.endpoints.unref(this.#to[s]);
    this.#from[s] = this.#to[s] = 0;
    this.verdicts.unref(this.#verdict[s]);
    this.#verdict[s] = NO_VERDICT;
    if ((this.#kind[s] >>> 24) === 6) {
      this.#v6Free.push(this.#src[s]);
      this.#kind[s] = 0;
    }
  }

  /** Links slot `s` at the front of its bucket. */
  #link(s: number, h: number): void {
    const b = h & this.#mask;
    let newChain = true;
    for (let c = this.#buckets[b]; c >= 0 && newChain; c = this.#next[c]) if (this.#hashOf(c) === h) newChain = false;
    this.#next[s] = this.#buckets[b];
    this.#buckets[b] = s;
    this.#flags[s] |= LINKED;
    this.size++;
    if (newChain) this.#chains++;
  }

  /** Unlinks `s`, telling the owner first if it was pending (evicted or replaced). */
  #unlinkNotify(s: number): void {
    const pending = (this.#flags[s] & STATE_MASK) === FlowState.Pending;
    this.#unlink(s);
    if (pending) this.onPendingUnlinked?.(s);
  }

  /** Unlinks slot `s` from its bucket and frees it. */
  #unlink(s: number): void {
    const h = this.#hashOf(s);
    const b = h & this.#mask;
    let prev = -1, others = false;
    for (let c = this.#buckets[b]; c >= 0; c = this.#next[c]) {
      if (c === s) continue;
      if (!others && this.#hashOf(c) === h) others = true;
      if (this.#next[c] === s) prev = c;
    }
    if (prev < 0) this.#buckets[b] = this.#next[s];
    else this.#next[prev] = this.#next[s];
    if (!others) this.#chains--;
    this.#clearRefs(s);
    this.#flags[s] = 0;
    this.size--;
    this.#next[s] = this.#freeHead;
    this.#freeHead = s;
  }

  /**
   * The flow to evict from a full cache (every slot 1..#used-1 is linked): the hand walks on
   * from where it stopped, clearing reference bits, to the first settled flow whose bit is
   * clear. Pending flows are passed over and keep their bit. After CLOCK_SCAN slots without
   * one it takes the last settled flow it passed (its bit just cleared), or if there was none
   * the first pending flow. Two turns are enough for any table (the first clears every bit),
   * so a small one is not walked CLOCK_SCAN times. The hand stops just past the victim, so
   * the new flow that takes its slot waits a whole turn of the hand.
   */
  #victim(): number {
    const flags = this.#flags, end = this.#used;
    const steps = Math.min(CLOCK_SCAN, 2 * (end - 1));
    let h = this.#hand, settled = -1, pending = -1, victim = -1;
    for (let i = 0; i < steps; i++, h++) {
      if (h >= end) h = 1;
      const f = flags[h];
      if ((f & LINKED) === 0) continue;
      if ((f & STATE_MASK) === FlowState.Pending) {
        if (pending < 0) pending = h;
      } else if ((f & REFERENCED) !== 0) {
        flags[h] = f & ~REFERENCED;
        settled = h;
      } else {
        victim = h;
        break;
      }
    }
    if (victim < 0) victim = settled >= 0 ? settled : pending;
    this.#hand = victim + 1 < end ? victim + 1 : 1;
    return victim;
  }

  /**
   * (Re)allocates the columns for `n` slots, keeping their contents: views of one ArrayBuffer
   * (4-byte columns first, then 2, then 1, so each view is aligned). See the header for why.
   */
  #allocColumns(n: number): void {
    const old = this.#next.buffer;
    const buf = new ArrayBuffer(n * SLOT_BYTES);
    let off = 0;
    const i32 = (old: Int32Array): Int32Array => { const a = new Int32Array(buf, off, n); a.set(old); off += 4 * n; return a; };
    const u32 = (old: Uint32Array): Uint32Array => { const a = new Uint32Array(buf, off, n); a.set(old); off += 4 * n; return a; };
    const u16 = (old: Uint16Array): Uint16Array => { const a = new Uint16Array(buf, off, n); a.set(old); off += 2 * n; return a; };
    const u8 = (old: Uint8Array): Uint8Array => { const a = new Uint8Array(buf, off, n); a.set(old); off += n; return a; };
    this.#next = i32(this.#next);
    this.#kind = i32(this.#kind);
    this.#ports = i32(this.#ports);
    this.#src = i32(this.#src);
    this.#dst = i32(this.#dst);
    this.#verdict = i32(this.#verdict);
    this.#expires = u32(this.#expires);
    this.#fwdPackets = u32(this.#fwdPackets);
    this.#revPackets = u32(this.#revPackets);
    this.#fwdBytes = u32(this.#fwdBytes);
    this.#revBytes = u32(this.#revBytes);
    this.#from = u16(this.#from);
    this.#to = u16(this.#to);
    this.#flags = u8(this.#flags);
    this.#tcp = u8(this.#tcp);
    release(old);
  }

  /** Doubles the columns (at most max + 1 slots) and, as needed, the buckets. */
  #grow(): void {
    const n = Math.min(this.#capacity * 2, this.max + 1);
    this.#capacity = n;
    this.#allocColumns(n);
    const nb = bucketsFor(n);
    if (nb === this.#buckets.length) return;
    // Rehash every cached flow into the bigger bucket array (its hash recomputed from its
    // key: ~50 ns a flow, once per doubling).
    const buckets = new Int32Array(nb).fill(-1);
    const mask = nb - 1;
    const old = this.#buckets.buffer;
    for (let s = 1; s < this.#used; s++) {
      if ((this.#flags[s] & LINKED) === 0) continue;
      const b = this.#hashOf(s) & mask;
      this.#next[s] = buckets[b];
      buckets[b] = s;
    }
    this.#buckets = buckets;
    this.#mask = mask;
    release(old);
  }

  /** The hash of the key in slot `s` (recomputed: it is not stored). */
  #hashOf(s: number): number {
    return this.#hashFn(this.readKey(s, this.#hashKey));
  }

  /** Moves the time base forward so relative times keep fitting (once every ~24 days). */
  #rebase(rel: number): void {
    const delta = rel - 1;
    this.#base += delta;
    for (let s = 0; s < this.#used; s++) {
      const e = this.#expires[s];
      if (e !== NEVER) this.#expires[s] = Math.max(0, e - delta);
    }
  }
}

/**
 * Frees the memory of an ArrayBuffer nothing will use again at the next scavenge instead of
 * the next full GC: transferring moves it to a new, young ArrayBuffer, dropped at once. The
 * columns outgrown by the last doubling (~26 MB at 1M flows) were in the old generation, and a
 * daemon idle after a burst of new flows may not run a full GC for a long time.
 */
function release(buf: ArrayBufferLike): void {
  if (buf instanceof ArrayBuffer && buf.byteLength > 0) structuredClone(buf, { transfer: [buf] });
}

/** Buckets for `slots` slots: the power of two >= slots (a load factor of at most 1). */
function bucketsFor(slots: number): number {
  let n = 16;
  while (n < slots) n *= 2;
  return n;
}
