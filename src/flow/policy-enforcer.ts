// The policy gate of the data path: flow cache first, policy evaluation only for
// new flows (the OVS datapath / upcall split).
//
//   decide(packet)
//     1 cache lookup (hash of the 5-tuple, both directions in one chain) -> a slot
//     2 hit:  Allowed -> Allow (either direction); Denied -> Deny (its direction);
//             Revoked -> Deny (both); Pending -> hold the packet; count it
//     3 miss: an ICMP error about an allowed cached flow -> Allow (related)
//             no policy selects the local side(s) -> Allow at once, cached
//             inline mode -> evaluate now, cache, Allow/Deny
//             pool mode   -> Pending entry, hold the packet, collect the flow
//   endBatch() (or a microtask once per batch)
//     4 all misses of the batch -> ONE request to the pool
//   verdicts back
//     5 install in the slot; Allowed: release held packets to onRelease (the
//       forwarder re-runs them and hits the cache); Denied: drop them, counted
//   setSnapshot(s)
//     6 new generation -> evaluators; revalidate every cached flow
//   tick() (every second)
//     7 coarse clock, flow-log summary, sweep of expired / abandoned entries
//
// Flows live in the cache's typed arrays (flow-cache.ts) and are named by slot.
// Objects exist only where needed: a pending flow (pool mode) has a FlowEntry
// handle holding its held packets and riding in the miss request (#pending maps
// its slot to it; the cache tells us when it evicts one); flow logs and /flows
// read a flow out into a FlowEntry.
//
// Per packet (steps 1-2) nothing is allocated; a new flow in pool mode allocates
// its handle.

import type { Logger } from 'pino';
import type { Endpoint } from '../dataplane/endpoint.js';
import { Verdict, type PolicyGate } from '../dataplane/policy-gate.js';
import { FlowKey } from '../packet/flow-key.js';
import type { FlowKeyParser } from '../packet/flow-key-parser.js';
import { canonicalIP } from '../policy/ip.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import {
  Decision, H_GENERATION, HEADER_WORDS, newRequest, newResponse, Q_SIDES, R_EGRESS, R_EGRESS_POLICY, R_EGRESS_RULE,
  R_INGRESS, R_INGRESS_POLICY, R_INGRESS_RULE, R_LOG_POLICY, R_LOG_RULE, R_LOG_SIDE, REQUEST_WORDS, RESULT_WORDS,
  Side, decisionAllows,
} from '../workers/batch-format.js';
import { InlineEvaluator, type PolicyEvaluator } from '../workers/evaluator.js';
import { PolicyPool, type PolicyPoolOptions } from '../workers/policy-pool.js';
import { DETACHED, FlowCache, type FlowCacheOptions, type FlowCacheStats } from './flow-cache.js';
import { FlowEntry, FlowState } from './flow-entry.js';
import { FlowLog, type FlowCause, type FlowLogOptions, type FlowRecord } from './flow-log.js';
import { HeldQueue, type HeldQueueOptions, type HeldQueueStats, type ReleaseFn } from './held-queue.js';
import { quotedFlowKey } from './related.js';
import { Revalidator, type RevalidationOwner, type RevalidatorOptions } from './revalidator.js';

export interface PolicyEnforcerOptions {
  /** 'pool' (default): misses go to worker threads, packets wait; 'inline': evaluated inside decide(). */
  mode?: 'pool' | 'inline';
  /** Options of the pool created in pool mode. */
  pool?: PolicyPoolOptions;
  /** Use this evaluator instead of creating one (its `sync` decides the mode); close() leaves it open. */
  evaluator?: PolicyEvaluator;
  cache?: FlowCacheOptions;
  held?: HeldQueueOptions;
  revalidator?: RevalidatorOptions;
  flowLog?: FlowLogOptions;
  /** Where flow logs and errors go (none: no flow logs). */
  logger?: Logger;
  /** Receives released held packets; may also be set later (`onRelease`). */
  onRelease?: ReleaseFn;
  /** Monotonic ms clock (default performance.now). */
  clock?: () => number;
  /** Start a sweep of expired entries this often (default 10 s). */
  sweepIntervalMs?: number;
  /** Pool mode: a flow without a verdict this long is given up, its packets dropped (default 5 s). */
  pendingTimeoutMs?: number;
  /** Pool mode: miss requests in flight at most; further new flows are dropped until one returns (default 16). */
  maxMissTasks?: number;
  /** Pool mode: most flows per request (default 512). */
  maxMissBatch?: number;
  /** Run the 1 s tick timer (default true; tests call tick() themselves). */
  timers?: boolean;
  /**
   * Called when an evaluation completes — a miss request (pool task, or one flow inline) or a
   * revalidation batch — with its wall time in seconds and its number of flows. Not called for
   * an evaluation that failed.
   */
  onEvaluated?: (seconds: number, flows: number, kind: 'new' | 'revalidate') => void;
}

export interface EnforcerStats {
  generation: number;
  hits: number;
  misses: number;
  /** New flows allowed without evaluation: nothing selects their local side(s). */
  unselected: number;
  /** Flows evaluated for new flows (inline or pool). */
  evaluated: number;
  missTasks: number;
  missTasksInFlight: number;
  /** Sum and max of request -> verdict time of miss requests (ms). */
  missLatencyTotalMs: number;
  missLatencyMaxMs: number;
  /** Packets dropped without being held: too many new flows waiting, or a full chain. */
  shed: number;
  /** Pending flows given up (timeout or evaluation error). */
  abandoned: number;
  evalErrors: number;
  /** Packets that hit a Denied/Revoked entry. */
  deniedPackets: number;
  /** ICMP errors allowed as related to an allowed cached flow. */
  related: number;
  /** Cached verdicts a revalidation changed. */
  revoked: number;
  reinstated: number;
  revalidationPasses: number;
  revalidatedFlows: number;
  lastRevalidationMs: number;
  cache: FlowCacheStats;
  held: HeldQueueStats;
  flowLog: { logged: number; suppressed: number };
}

const SWEEP_SLICE_SLOTS = 8192;
/** Snapshots kept for answers computed under an older generation (policy index -> id). */
const KEPT_SNAPSHOTS = 4;

export class PolicyEnforcer implements PolicyGate, RevalidationOwner {
  readonly cache: FlowCache;
  readonly evaluator: PolicyEvaluator;
  readonly held: HeldQueue;
  readonly revalidator: Revalidator;
  readonly flowLog: FlowLog;

  hits = 0;
  misses = 0;
  unselected = 0;
  evaluated = 0;
  missTasks = 0;
  missLatencyTotalMs = 0;
  missLatencyMaxMs = 0;
  shed = 0;
  abandoned = 0;
  evalErrors = 0;
  deniedPackets = 0;
  related = 0;
  revoked = 0;
  reinstated = 0;

  readonly #ownsEvaluator: boolean;
  readonly #sync: boolean;
  readonly #clock: () => number;
  readonly #logger: Logger | undefined;
  readonly #pendingTimeoutMs: number;
  readonly #maxMissTasks: number;
  readonly #maxMissBatch: number;
  readonly #sweepIntervalMs: number;
  readonly #onEvaluated: ((seconds: number, flows: number, kind: 'new' | 'revalidate') => void) | undefined;
  #generation = 0;
  #snapshot: PolicySnapshot | undefined = undefined;
  readonly #snapshots = new Map<number, PolicySnapshot | undefined>([[0, undefined]]);
  /** Per endpoint, for the current snapshot: Side bits of the directions some policy selects it for. */
  #selected = new WeakMap<Endpoint, number>();

  /** Pool mode: the handles of pending flows, by slot. */
  readonly #pending = new Map<number, FlowEntry>();
  // Misses of the current batch (pool mode).
  readonly #misses: FlowEntry[] = [];
  #missCount = 0;
  /** The cached flow of the last packet decide() allowed (-1: none, or not cached), and its direction. */
  #lastSlot = -1;
  #lastReverse = false;
  #missTasksInFlight = 0;
  #flushQueued = false;
  readonly #flushBound = (): void => this.#flushMisses();

  // Inline mode: one-flow request/response reused for every miss.
  readonly #oneReq = newRequest(0, 1);
  readonly #oneRes = newResponse(0, 1);
  readonly #scratch = new FlowKey();
  readonly #quoted = new FlowKey();
  /** A flow read out for a flow log record. */
  readonly #logEntry = new FlowEntry();

  #idleWaiters: (() => void)[] = [];
  /** The sweep walks cache slots [#sweepPos, #sweepEnd) in slices (FlowCache.forEachSlot). */
  #sweepEnd = 0;
  #sweepPos = 0;
  #lastSweep: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: PolicyEnforcerOptions = {}) {
    this.#clock = opts.clock ?? (() => performance.now());
    this.#logger = opts.logger;
    this.#pendingTimeoutMs = opts.pendingTimeoutMs ?? 5000;
    this.#maxMissTasks = opts.maxMissTasks ?? 16;
    this.#maxMissBatch = opts.maxMissBatch ?? 512;
    this.#sweepIntervalMs = opts.sweepIntervalMs ?? 10_000;
    this.#onEvaluated = opts.onEvaluated;
    for (const [name, v] of [['pendingTimeoutMs', this.#pendingTimeoutMs], ['maxMissTasks', this.#maxMissTasks],
      ['maxMissBatch', this.#maxMissBatch], ['sweepIntervalMs', this.#sweepIntervalMs]] as const) {
      if (!(v > 0)) throw new TypeError(`PolicyEnforcer: ${name} must be > 0, got ${String(v)}`);
    }
    if (opts.mode !== undefined && opts.mode !== 'pool' && opts.mode !== 'inline') {
      throw new TypeError(`PolicyEnforcer: mode must be 'pool' or 'inline', got ${JSON.stringify(opts.mode)}`);
    }
    if (opts.evaluator !== undefined && opts.mode !== undefined && opts.evaluator.sync !== (opts.mode === 'inline')) {
      throw new TypeError(`PolicyEnforcer: mode '${opts.mode}' contradicts the given evaluator (sync=${opts.evaluator.sync})`);
    }
    this.#ownsEvaluator = opts.evaluator === undefined;
    this.evaluator = opts.evaluator ?? (opts.mode === 'inline' ? new InlineEvaluator() : new PolicyPool(opts.pool));
    this.#sync = this.evaluator.sync;
    const now = this.#clock();
    this.cache = new FlowCache(opts.cache);
    this.cache.setNow(now);
    this.cache.onPendingUnlinked = (s) => this.#detachPending(s);
    this.held = new HeldQueue(opts.held, opts.onRelease);
    this.revalidator = new Revalidator(this, opts.revalidator);
    this.flowLog = new FlowLog(opts.logger, opts.flowLog, now);
    this.#lastSweep = now;
    if (opts.timers ?? true) {
      this.#timer = setInterval(() => this.tick(), 1000);
      this.#timer.unref();
    }
  }

  /** Where released held packets go (the forwarder's reinject). */
  get onRelease(): ReleaseFn | undefined { return this.held.onRelease; }
  set onRelease(fn: ReleaseFn | undefined) { this.held.onRelease = fn; }

  get generation(): number { return this.#generation; }
  get snapshot(): PolicySnapshot | undefined { return this.#snapshot; }

  // --- the data path -----------------------------------------------------------

  /**
   * PolicyGate.decide; `gso` (optional): the packet's MSS if it is a TCP super-packet, kept
   * with it if it is held (the released copy carries it in batch.gso).
   */
  decide(key: FlowKey, parsed: FlowKeyParser, len: number, from: Endpoint | undefined, to: Endpoint | undefined, gso = 0): Verdict {
    const cache = this.cache;
    this.#lastSlot = -1;
    this.#lastReverse = false;
    const s = cache.lookup(key, from, to);
    if (s < 0) return this.#miss(key, parsed, len, from, to, gso);
    this.hits++;
    switch (cache.state(s)) {
      case FlowState.Allowed:
        cache.account(s, cache.reverse, len, parsed.tcpFlags);
        this.#lastSlot = s;
        this.#lastReverse = cache.reverse;
        return Verdict.Allow;
      case FlowState.Pending: {
        const p = this.#pending.get(s);
        if (p !== undefined) this.#hold(p, parsed, len, from, to, gso);
        else this.shed++; // (a pending flow always has its handle; never throw per packet)
        return Verdict.Held;
      }
      default:
        cache.account(s, cache.reverse, len, parsed.tcpFlags);
        this.deniedPackets++;
        return Verdict.Deny;
    }
  }

  /** PolicyGate.addForwarded: the native fast path's packets of the flow decided last go to its counters. */
  addForwarded(packets: number, bytes: number): void {
    if (this.#lastSlot >= 0) this.cache.addCounts(this.#lastSlot, this.#lastReverse, packets, bytes);
  }

  /** Call after each forwarded batch: advances the coarse clock and sends the batch's misses as one request. */
  endBatch(): void {
    this.cache.setNow(this.#clock());
    if (this.#missCount > 0) this.#flushMisses();
  }

  #miss(key: FlowKey, parsed: FlowKeyParser, len: number, from: Endpoint | undefined, to: Endpoint | undefined, gso: number): Verdict {
    this.misses++;
    if (parsed.icmpError && this.#isRelated(key, parsed)) {
      this.related++;
      return Verdict.Allow;
    }
    const cache = this.cache;
    const sides = (from !== undefined ? Side.Egress : 0) | (to !== undefined ? Side.Ingress : 0);
    if (!this.#isSelected(from, to)) {
      // Nothing selects the local side(s): open, as Kubernetes and Calico leave it. No evaluation.
      this.unselected++;
      const s = this.#createOrDetach(key, from, to);
      this.#settleOpen(s, sides);
      cache.refreshExpiry(s);
      cache.account(s, false, len, parsed.tcpFlags);
      this.#logDecided(s, 'new', FlowState.Pending, 0, undefined, -1, this.#snapshot, cache.now);
      if (s === DETACHED) cache.releaseDetached();
      else this.#lastSlot = s;
      return Verdict.Allow;
    }
    if (this.#sync) {
      const s = this.#createOrDetach(key, from, to);
      const req = this.#oneReq;
      req[H_GENERATION] = this.#generation;
      key.writeTo(req, HEADER_WORDS);
      req[HEADER_WORDS + Q_SIDES] = sides;
      const t0 = this.#onEvaluated !== undefined ? performance.now() : 0;
      try {
        this.evaluator.evaluateSync(req, this.#oneRes);
      } catch (err) {
        this.#evalFailed(err);
        if (s === DETACHED) cache.releaseDetached();
        else cache.remove(s);
        return Verdict.Deny;
      }
      this.evaluated++;
      if (this.#onEvaluated !== undefined) this.#onEvaluated((performance.now() - t0) / 1000, 1, 'new');
      cache.account(s, false, len, parsed.tcpFlags); // before the verdict, so a flow log counts this packet
      const res = this.#oneRes;
      const gen = res[H_GENERATION];
      const allowed = this.#settleNew(s, undefined, res, HEADER_WORDS, this.#snapshotOf(gen), gen);
      if (s === DETACHED) cache.releaseDetached();
      if (allowed) {
        if (s !== DETACHED) this.#lastSlot = s;
        return Verdict.Allow;
      }
      this.deniedPackets++;
      return Verdict.Deny;
    }
    if (this.#missTasksInFlight >= this.#maxMissTasks) {
      this.shed++;
      return Verdict.Held;
    }
    const s = cache.create(key, from, to);
    if (s < 0) {
      this.shed++;
      return Verdict.Held;
    }
    const p = new FlowEntry().copyFrom(key);
    p.slot = s;
    p.from = from;
    p.to = to;
    p.created = p.lastSeen = cache.now;
    this.#pending.set(s, p);
    this.#hold(p, parsed, len, from, to, gso);
    this.#misses[this.#missCount++] = p;
    if (this.#missCount >= this.#maxMissBatch) this.#flushMisses();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushBound);
    }
    return Verdict.Held;
  }

  /** A new flow's slot: cached, or (its chain full of pending flows) the detached slot, decided but not remembered. */
  #createOrDetach(key: FlowKey, from: Endpoint | undefined, to: Endpoint | undefined): number {
    const s = this.cache.create(key, from, to);
    return s >= 0 ? s : this.cache.detach(key, from, to);
  }

  /** The cache evicted (or replaced) a pending flow: its handle rides on, detached, and is cached again on its verdict. */
  #detachPending(s: number): void {
    const p = this.#pending.get(s);
    if (p === undefined) return;
    this.#pending.delete(s);
    p.slot = -1;
  }

  /** Is this ICMP error about a packet of an allowed cached flow, and addressed to that packet's sender? */
  #isRelated(key: FlowKey, parsed: FlowKeyParser): boolean {
    const q = this.#quoted;
    if (!quotedFlowKey(parsed.family === 4 ? parsed.ip4.buf : parsed.ip6.buf, parsed, q)) return false;
    if (q.src0 !== key.dst0 || q.src1 !== key.dst1 || q.src2 !== key.dst2 || q.src3 !== key.dst3) return false;
    const s = this.cache.peekFlow(q);
    return s >= 0 && this.cache.state(s) === FlowState.Allowed;
  }

  #hold(p: FlowEntry, parsed: FlowKeyParser, len: number, from: Endpoint | undefined, to: Endpoint | undefined, gso: number): void {
    const v = parsed.family === 4 ? parsed.ip4 : parsed.ip6;
    this.held.hold(p, v.buf, v.off, len, from, to, gso);
  }

  /** Does some policy select a local side of this flow (so it needs evaluating)? */
  #isSelected(from: Endpoint | undefined, to: Endpoint | undefined): boolean {
    if (this.#snapshot === undefined) return false;
    return (from !== undefined && (this.#selectedSides(from) & Side.Egress) !== 0) ||
      (to !== undefined && (this.#selectedSides(to) & Side.Ingress) !== 0);
  }

  #selectedSides(ep: Endpoint): number {
    let bits = this.#selected.get(ep);
    if (bits === undefined) {
      bits = 0;
      const s = this.#snapshot!;
      for (const ip of [ep.record.ip, ep.record.ipv6]) {
        if (ip === undefined) continue;
        const i = s.endpointByIP.get(canonicalIP(ip) ?? ip);
        if (i === undefined) continue;
        const t = s.endpoints[i];
        if (t.egress.length > 0) bits |= Side.Egress;
        if (t.ingress.length > 0) bits |= Side.Ingress;
      }
      this.#selected.set(ep, bits);
    }
    return bits;
  }

  #settleOpen(s: number, sides: number): void {
    const cache = this.cache;
    cache.setState(s, FlowState.Allowed);
    cache.setVerdict(s, this.#generation,
      (sides & Side.Egress) !== 0 ? Decision.NoPolicy : Decision.NotChecked, undefined, -1,
      (sides & Side.Ingress) !== 0 ? Decision.NoPolicy : Decision.NotChecked, undefined, -1);
  }

  // --- misses to the pool ---------------------------------------------------------

  #flushMisses(): void {
    this.#flushQueued = false;
    const n = this.#missCount;
    if (n === 0 || this.#closed) return;
    this.#missCount = 0;
    const entries = this.#misses.slice(0, n);
    for (let i = 0; i < n; i++) this.#misses[i] = undefined!;
    const req = newRequest(this.#generation, n);
    for (let i = 0; i < n; i++) {
      const p = entries[i];
      const q = HEADER_WORDS + i * REQUEST_WORDS;
      p.writeTo(req, q);
      req[q + Q_SIDES] = (p.from !== undefined ? Side.Egress : 0) | (p.to !== undefined ? Side.Ingress : 0);
    }
    this.missTasks++;
    this.#missTasksInFlight++;
    const sent = performance.now();
    this.evaluator.evaluate(req).then(
      (res) => {
        this.#missTasksInFlight--;
        const ms = performance.now() - sent;
        this.missLatencyTotalMs += ms;
        if (ms > this.missLatencyMaxMs) this.missLatencyMaxMs = ms;
        this.evaluated += n;
        this.#onEvaluated?.(ms / 1000, n, 'new');
        if (!this.#closed) {
          this.cache.setNow(this.#clock());
          this.#applyNew(entries, res);
        }
        this.#wakeIdle();
      },
      (err: unknown) => {
        this.#missTasksInFlight--;
        if (!this.#closed) {
          this.#evalFailed(err);
          for (const p of entries) if (p.state === FlowState.Pending) this.#abandon(p);
        }
        this.#wakeIdle();
      },
    );
  }

  // --- installing verdicts ------------------------------------------------------------

  /** Verdicts for new flows of a pool request: install, then release or drop their held packets. */
  #applyNew(entries: readonly FlowEntry[], res: Int32Array): void {
    const gen = res[H_GENERATION];
    const snap = this.#snapshotOf(gen);
    const cache = this.cache;
    for (let i = 0; i < entries.length; i++) {
      const p = entries[i];
      if (p.state !== FlowState.Pending) continue; // abandoned meanwhile
      let s = p.slot;
      if (s >= 0) this.#pending.delete(s);
      else s = this.#createOrDetach(p, p.from, p.to); // evicted while pending: keep its verdict anyway
      p.slot = -1;
      const allowed = this.#settleNew(s, p, res, HEADER_WORDS + i * RESULT_WORDS, snap, gen);
      p.state = allowed ? FlowState.Allowed : FlowState.Denied; // the handle is done with
      if (s === DETACHED) cache.releaseDetached();
    }
    this.held.flush();
  }

  /**
   * Installs the verdict of a new flow (slot `s`; `p` its pending handle with held packets, in
   * pool mode): releases or drops its held packets, logs it. Returns whether it is allowed.
   */
  #settleNew(s: number, p: FlowEntry | undefined, res: Int32Array, o: number, snap: PolicySnapshot | undefined, gen: number): boolean {
    const cache = this.cache;
    const allowed = this.#install(s, res, o, snap, gen);
    cache.setState(s, allowed ? FlowState.Allowed : FlowState.Denied);
    cache.refreshExpiry(s);
    if (allowed) {
      this.#dropReverseDeny(s);
      if (p !== undefined) this.held.release(p);
    } else if (p !== undefined && p.heldCount > 0) {
      const n = p.heldCount;
      cache.addCounts(s, false, n, this.held.drop(p));
    }
    this.#log(s, 'new', FlowState.Pending, res, o, snap, cache.now);
    if (gen < this.#generation && s !== DETACHED) this.revalidator.queue(s);
    return allowed;
  }

  applyRevalidation(slots: readonly number[], res: Int32Array): void {
    const gen = res[H_GENERATION];
    const snap = this.#snapshotOf(gen);
    const now = this.#clock();
    const cache = this.cache;
    cache.setNow(now);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i];
      if (s < 0) continue;
      cache.setRevalidating(s, false);
      const prev = cache.state(s);
      if (prev !== FlowState.Allowed && prev !== FlowState.Denied && prev !== FlowState.Revoked) continue;
      if (cache.generation(s) > gen) continue;
      const o = HEADER_WORDS + i * RESULT_WORDS;
      const allowed = this.#install(s, res, o, snap, gen);
      if (allowed) {
        cache.setState(s, FlowState.Allowed);
        if (prev !== FlowState.Allowed) {
          this.reinstated++;
          this.#dropReverseDeny(s);
        }
      } else if (prev === FlowState.Allowed) {
        // A connection the policy no longer allows: stop both directions now.
        cache.setState(s, FlowState.Revoked);
        this.revoked++;
      }
      // #dropReverseDeny removes only a Denied flow of the reverse key, never `s` itself.
      if (cache.state(s) !== prev) this.#log(s, 'policy-change', prev, res, o, snap, now);
      if (gen < this.#generation) this.revalidator.queue(s);
    }
  }

  settleUnselected(s: number): boolean {
    const cache = this.cache;
    if (this.#isSelected(cache.from(s), cache.to(s))) return false;
    const prev = cache.state(s);
    this.#settleOpen(s, (cache.hasFrom(s) ? Side.Egress : 0) | (cache.hasTo(s) ? Side.Ingress : 0));
    if (prev !== FlowState.Allowed) {
      this.reinstated++;
      this.#dropReverseDeny(s);
      this.#logDecided(s, 'policy-change', prev, 0, undefined, -1, this.#snapshot, cache.now);
    }
    return true;
  }

  revalidationFailed(slots: readonly number[], err: unknown): void {
    this.#evalFailed(err);
    // Keep the old verdicts; retry them (the next tick or change picks them up).
    for (const s of slots) if (s >= 0) this.revalidator.queue(s);
  }

  reportEvaluation(seconds: number, flows: number): void {
    this.#onEvaluated?.(seconds, flows, 'revalidate');
  }

  /** Copies one result into slot `s`; returns whether the flow is allowed. */
  #install(s: number, res: Int32Array, o: number, snap: PolicySnapshot | undefined, gen: number): boolean {
    const eg = res[o + R_EGRESS] as Decision, ing = res[o + R_INGRESS] as Decision;
    this.cache.setVerdict(s, gen,
      eg, policyId(snap, res[o + R_EGRESS_POLICY]), res[o + R_EGRESS_RULE],
      ing, policyId(snap, res[o + R_INGRESS_POLICY]), res[o + R_INGRESS_RULE]);
    return decisionAllows(eg) && decisionAllows(ing);
  }

  /** An allowed flow admits its replies: a first-seen deny of the reply direction (mid-stream pickup) goes. */
  #dropReverseDeny(s: number): void {
    const r = this.cache.readKey(s, this.#scratch).reverse();
    const d = this.cache.peekExact(r);
    if (d >= 0 && d !== s && this.cache.state(d) === FlowState.Denied) this.cache.remove(d);
  }

  #log(s: number, cause: FlowCause, prev: FlowState, res: Int32Array, o: number, snap: PolicySnapshot | undefined, now: number): void {
    this.#logDecided(s, cause, prev, res[o + R_LOG_SIDE], policyId(snap, res[o + R_LOG_POLICY]), res[o + R_LOG_RULE], snap, now);
  }

  /** Writes the flow log record of slot `s` if one is wanted (reads the flow out only then). */
  #logDecided(s: number, cause: FlowCause, prev: FlowState, logSide: number, logPolicy: string | undefined, logRule: number,
    snap: PolicySnapshot | undefined, now: number): void {
    if (!this.flowLog.wants(cause, prev, this.cache.state(s), logSide)) return;
    this.flowLog.decided(this.cache.read(s, this.#logEntry), cause, prev, logSide, logPolicy, logRule, snap, now);
  }

  /** Gives up a pending flow: drops its held packets, forgets it. */
  #abandon(p: FlowEntry): void {
    this.abandoned++;
    this.held.drop(p);
    p.state = FlowState.Abandoned;
    if (p.slot >= 0) {
      const s = p.slot;
      this.#pending.delete(s);
      p.slot = -1;
      this.cache.remove(s);
    }
  }

  #evalFailed(err: unknown): void {
    this.evalErrors++;
    this.#logger?.error({ err }, 'policy evaluation failed');
  }

  #snapshotOf(gen: number): PolicySnapshot | undefined {
    return gen === this.#generation ? this.#snapshot : this.#snapshots.get(gen);
  }

  // --- the control plane ---------------------------------------------------------------

  /**
   * Installs a new compiled snapshot (undefined: no policy). Bumps the generation,
   * sends the snapshot to the evaluator once, and revalidates every cached flow.
   * Returns the new generation.
   */
  setSnapshot(snapshot: PolicySnapshot | undefined): number {
    const gen = ++this.#generation;
    this.#snapshot = snapshot;
    this.#snapshots.set(gen, snapshot);
    for (const g of this.#snapshots.keys()) if (g <= gen - KEPT_SNAPSHOTS) this.#snapshots.delete(g);
    this.#selected = new WeakMap();
    this.evaluator.setSnapshot(snapshot, gen);
    this.revalidator.start();
    return gen;
  }

  /** Resolves when every cached flow carries the current generation's verdict. */
  revalidated(): Promise<void> {
    return this.revalidator.idle();
  }

  /** Resolves when no new-flow request is in flight or waiting (for tests and benchmarks). */
  settled(): Promise<void> {
    if (this.#missTasksInFlight === 0 && this.#missCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdle(): void {
    if (this.#missTasksInFlight !== 0 || this.#missCount !== 0 || this.#idleWaiters.length === 0) return;
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const f of w) f();
  }

  /** Once a second: clock, flow-log summary, sweeping. Driven by the timer unless timers: false. */
  tick(): void {
    const now = this.#clock();
    this.cache.setNow(now);
    this.flowLog.tick(now);
    if (this.#sweepPos >= this.#sweepEnd && now - this.#lastSweep >= this.#sweepIntervalMs) {
      this.#lastSweep = now;
      this.#sweepEnd = this.cache.slotsUsed;
      this.#sweepPos = 1;
    }
    if (this.#sweepPos < this.#sweepEnd) this.#sweepSlice();
  }

  /** Removes expired flows and abandons overdue pending ones, a slice at a time. */
  #sweepSlice(): void {
    const cache = this.cache;
    const now = cache.now;
    const end = Math.min(this.#sweepEnd, this.#sweepPos + SWEEP_SLICE_SLOTS);
    cache.forEachSlot(this.#sweepPos, end, (s) => {
      if (cache.state(s) === FlowState.Pending) {
        const p = this.#pending.get(s);
        if (p !== undefined && now - p.created >= this.#pendingTimeoutMs) this.#abandon(p);
      } else if (cache.isExpired(s)) {
        cache.remove(s);
        cache.expired++;
      } else {
        cache.age(s);
      }
    });
    this.#sweepPos = end;
    if (end < this.#sweepEnd) setImmediate(() => { if (!this.#closed) this.#sweepSlice(); });
  }

  // --- introspection ---------------------------------------------------------------------

  /** Cached flows (copies read out of the cache): those in use first, newest first roughly (FlowCache.dumpSlots). */
  flows(): IterableIterator<FlowEntry> {
    return this.cache.entries();
  }

  /** The cached flow with exactly this key (a copy), or undefined. */
  flow(key: FlowKey): FlowEntry | undefined {
    const s = this.cache.peekExact(key);
    return s < 0 ? undefined : this.cache.read(s);
  }

  /** A structured description of a cached flow (for /flows). */
  describe(e: FlowEntry): FlowRecord {
    return this.flowLog.record(e, 'new', 0, undefined, -1, this.#snapshotOf(e.generation));
  }

  /**
   * Descriptions of up to `limit` cached flows, in use first, newest first roughly; denyOnly: only
   * those not allowed (for /flows). Reads out only the flows it returns.
   */
  flowRecords(denyOnly: boolean, limit: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    const cache = this.cache, e = this.#logEntry;
    for (const s of cache.slots()) {
      if (out.length >= limit) break;
      if (denyOnly && cache.state(s) === FlowState.Allowed) continue;
      out.push(this.describe(cache.read(s, e)));
    }
    return out;
  }

  stats(): EnforcerStats {
    return {
      generation: this.#generation,
      hits: this.hits,
      misses: this.misses,
      unselected: this.unselected,
      evaluated: this.evaluated,
      missTasks: this.missTasks,
      missTasksInFlight: this.#missTasksInFlight,
      missLatencyTotalMs: this.missLatencyTotalMs,
      missLatencyMaxMs: this.missLatencyMaxMs,
      shed: this.shed,
      abandoned: this.abandoned,
      evalErrors: this.evalErrors,
      deniedPackets: this.deniedPackets,
      related: this.related,
      revoked: this.revoked,
      reinstated: this.reinstated,
      revalidationPasses: this.revalidator.passes,
      revalidatedFlows: this.revalidator.flows,
      lastRevalidationMs: this.revalidator.lastPassMs,
      cache: this.cache.stats(),
      held: this.held.stats(),
      flowLog: { logged: this.flowLog.logged, suppressed: this.flowLog.suppressed },
    };
  }

  /** Stops timers and (if it created it) the evaluator. Held packets are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const p of this.#pending.values()) this.held.drop(p);
    if (this.#ownsEvaluator) await this.evaluator.close();
  }
}

function policyId(s: PolicySnapshot | undefined, i: number): string | undefined {
  return s !== undefined && i >= 0 && i < s.policies.length ? s.policies[i].id : undefined;
}

