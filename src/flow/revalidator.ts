// Policy changes reach existing flows (OVS's revalidators, on a policy change).
//
//   start()  dump the cache's slots, those hit lately first (busy flows are
//            rechecked first), and walk them in chunks: every settled flow
//            whose generation is older than the current one is packed into a
//            request, evaluated (inline in time slices, or in the pool with a
//            bounded number of tasks in flight) and updated IN PLACE by the owner
//            (counters, TCP state and held-ness untouched; a flow still allowed
//            keeps flowing on its old verdict until then, a flow now denied
//            stops at its next packet).
//   queue()  one flow to recheck soon: a miss answered under a generation that
//            was replaced while the task was in flight.
//
// A start() during a pass restarts it for the new generation; results that come
// back for an older generation re-queue their flows. Flows are cache slots; a
// pool task keeps a copy of its request, so an answer for a slot that was freed
// (and perhaps reused by another flow) while the task was out is recognised and
// dropped (FlowCache.matches).

import type { PolicyEvaluator } from '../workers/evaluator.js';
import { HEADER_WORDS, newRequest, newResponse, Q_SIDES, REQUEST_WORDS, Side } from '../workers/batch-format.js';
import type { FlowCache } from './flow-cache.js';
import { FlowState } from './flow-entry.js';

export interface RevalidatorOptions {
  /** Flows per evaluation task in pool mode (default 2048). */
  chunk?: number;
  /** Flows per evaluation in inline mode, where each blocks the event loop (default 256). */
  inlineChunk?: number;
  /** Pool mode: evaluation tasks in flight at once (default 2). */
  maxInFlight?: number;
  /** Inline mode: most time (ms) spent per slice before yielding to I/O (default 4). */
  sliceMs?: number;
}

/** What the revalidator works on; implemented by the enforcer. */
export interface RevalidationOwner {
  readonly cache: FlowCache;
  readonly evaluator: PolicyEvaluator;
  /** The current policy generation. */
  readonly generation: number;
  /**
   * Settles slot `s` in place without evaluation if nothing selects its local sides
   * (open by definition); returns false if it needs evaluating.
   */
  settleUnselected(s: number): boolean;
  /**
   * Installs the verdicts of `res` (a response for `slots`, in order; -1: a slot whose
   * flow left the cache meanwhile, skip it). Clears the slots' revalidating marks.
   */
  applyRevalidation(slots: readonly number[], res: Int32Array): void;
  /** An evaluation failed: the slots (-1: gone) keep their verdicts; their revalidating marks are already cleared. */
  revalidationFailed(slots: readonly number[], err: unknown): void;
  /** An evaluation of `flows` flows took `seconds` (wall time). */
  reportEvaluation(seconds: number, flows: number): void;
}

/** Slots visited per collection at most. */
const VISIT_BUDGET = 8192;

function posInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`Revalidator: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

export class Revalidator {
  readonly chunk: number;
  readonly inlineChunk: number;
  readonly maxInFlight: number;
  readonly sliceMs: number;
  /** Passes completed, flows re-evaluated, duration (ms) of the last complete pass. */
  passes = 0;
  flows = 0;
  lastPassMs = 0;

  readonly #owner: RevalidationOwner;
  #slots: Int32Array = new Int32Array(0);
  #pos = 0;
  #passStart = 0;
  #active = false;
  #extra: number[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idleWaiters: (() => void)[] = [];
  readonly #step = (): void => this.#run();

  constructor(owner: RevalidationOwner, opts: RevalidatorOptions = {}) {
    this.#owner = owner;
    this.chunk = posInt('chunk', opts.chunk, 2048);
    this.inlineChunk = posInt('inlineChunk', opts.inlineChunk, 256);
    this.maxInFlight = posInt('maxInFlight', opts.maxInFlight, 2);
    this.sliceMs = opts.sliceMs ?? 4;
    if (!(this.sliceMs > 0)) throw new TypeError(`Revalidator: sliceMs must be > 0, got ${String(opts.sliceMs)}`);
  }

  /** True while a pass is running or queued entries or tasks remain. */
  get busy(): boolean {
    return this.#active || this.#extra.length > 0 || this.#inFlight > 0;
  }

  /** Starts (or restarts) a pass over every cached flow for the owner's current generation. */
  start(): void {
    this.#slots = this.#owner.cache.dumpSlots();
    this.#pos = 0;
    this.#passStart = performance.now();
    this.#active = true;
    this.#schedule();
  }

  /** Rechecks one flow soon (if it is still older than the current generation then). */
  queue(s: number): void {
    this.#extra.push(s);
    this.#schedule();
  }

  /** Resolves when nothing is left to revalidate. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#step);
  }

  #stale(s: number, gen: number): boolean {
    const cache = this.#owner.cache;
    if (!cache.linked(s) || cache.revalidating(s) || cache.generation(s) >= gen) return false;
    const state = cache.state(s);
    return state === FlowState.Allowed || state === FlowState.Denied || state === FlowState.Revoked;
  }

  #take(s: number, gen: number, out: number[]): void {
    if (!this.#stale(s, gen) || this.#owner.settleUnselected(s)) return;
    this.#owner.cache.setRevalidating(s, true);
    out.push(s);
  }

  /**
   * Up to `max` stale flows: queued ones first, then from the slot dump. Visits at
   * most VISIT_BUDGET slots, so a cache whose flows need no evaluation (settled in
   * place) is still walked a slice at a time.
   */
  #collect(out: number[], max: number): void {
    const gen = this.#owner.generation;
    while (this.#extra.length > 0 && out.length < max) this.#take(this.#extra.pop()!, gen, out);
    if (!this.#active) return;
    const slots = this.#slots;
    const stop = Math.min(slots.length, this.#pos + VISIT_BUDGET);
    while (out.length < max && this.#pos < stop) {
      this.#take(slots[this.#pos++], gen, out);
    }
  }

  #run(): void {
    this.#scheduled = false;
    const owner = this.#owner;
    const sync = owner.evaluator.sync;
    const deadline = performance.now() + this.sliceMs;
    for (;;) {
      if (!sync && this.#inFlight >= this.maxInFlight) return; // a completion reschedules
      const batch: number[] = [];
      this.#collect(batch, sync ? this.inlineChunk : this.chunk);
      if (batch.length === 0) {
        if (this.#active && this.#pos < this.#slots.length) {
          this.#schedule(); // more slots to walk: let I/O run first
          return;
        }
        if (this.#active && this.#inFlight === 0) this.#finishPass();
        if (!this.busy) this.#wakeIdle();
        return;
      }
      const req = this.#pack(batch);
      if (sync) {
        const res = newResponse(0, batch.length);
        const t0 = performance.now();
        let ok = true;
        try {
          owner.evaluator.evaluateSync(req, res);
        } catch (err) {
          ok = false;
          this.#failed(batch, err);
        }
        if (ok) {
          this.flows += batch.length;
          owner.reportEvaluation((performance.now() - t0) / 1000, batch.length);
          owner.applyRevalidation(batch, res);
        }
      } else {
        // The request is transferred to a worker: keep a copy to check the slots against.
        const sent = req.slice();
        const t0 = performance.now();
        this.#inFlight++;
        owner.evaluator.evaluate(req).then(
          (res) => {
            this.#inFlight--;
            this.flows += batch.length;
            owner.reportEvaluation((performance.now() - t0) / 1000, batch.length);
            owner.applyRevalidation(this.#stillThere(batch, sent), res);
            this.#schedule();
          },
          (err: unknown) => {
            this.#inFlight--;
            this.#failed(this.#stillThere(batch, sent), err);
            this.#schedule();
          },
        );
      }
      if (performance.now() >= deadline) {
        this.#schedule();
        return;
      }
    }
  }

  #pack(batch: readonly number[]): Int32Array {
    const cache = this.#owner.cache;
    const req = newRequest(this.#owner.generation, batch.length);
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i];
      const q = HEADER_WORDS + i * REQUEST_WORDS;
      cache.writeKey(s, req, q);
      req[q + Q_SIDES] = (cache.hasFrom(s) ? Side.Egress : 0) | (cache.hasTo(s) ? Side.Ingress : 0);
    }
    return req;
  }

  #failed(batch: number[], err: unknown): void {
    const cache = this.#owner.cache;
    for (const s of batch) if (s >= 0) cache.setRevalidating(s, false);
    this.#owner.revalidationFailed(batch, err);
  }

  /** `batch` with -1 for each slot that no longer holds the flow sent (or is no longer marked). */
  #stillThere(batch: number[], sent: Int32Array): number[] {
    const cache = this.#owner.cache;
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i], q = HEADER_WORDS + i * REQUEST_WORDS;
      if (!cache.revalidating(s) || !cache.matches(s, sent, q, sent[q + Q_SIDES])) batch[i] = -1;
    }
    return batch;
  }

  #finishPass(): void {
    this.#active = false;
    this.#slots = new Int32Array(0);
    this.#pos = 0;
    this.passes++;
    this.lastPassMs = performance.now() - this.#passStart;
  }

  #wakeIdle(): void {
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const f of w) f();
  }
}
