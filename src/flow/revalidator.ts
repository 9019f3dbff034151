// Policy changes reach existing flows (OVS's revalidators, on a policy change).
//
//   start()  dump the cache's chain keys, most recently used first (busy flows
//            are rechecked first), and walk them in chunks: every settled entry
//            whose generation is older than the current one is packed into a
//            request, evaluated (inline in time slices, or in the pool with a
//            bounded number of tasks in flight) and updated IN PLACE by the owner
//            (counters, TCP state and held-ness untouched; a flow still allowed
//            keeps flowing on its old verdict until then, a flow now denied
//            stops at its next packet).
//   queue()  one entry to recheck soon: a miss answered under a generation that
//            was replaced while the task was in flight.
//
// A start() during a pass restarts it for the new generation; results that come
// back for an older generation re-queue their entries.

import type { PolicyEvaluator } from '../workers/evaluator.js';
import { HEADER_WORDS, newRequest, newResponse, Q_SIDES, REQUEST_WORDS, Side } from '../workers/batch-format.js';
import type { FlowCache } from './flow-cache.js';
import { FlowState, type FlowEntry } from './flow-entry.js';

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
   * Settles `e` in place without evaluation if nothing selects its local sides
   * (open by definition); returns false if it needs evaluating.
   */
  settleUnselected(e: FlowEntry): boolean;
  /** Installs the verdicts of `res` (a response for `entries`, in order). */
  applyRevalidation(entries: readonly FlowEntry[], res: Int32Array): void;
  /** An evaluation failed: the entries keep their verdicts. */
  revalidationFailed(entries: readonly FlowEntry[], err: unknown): void;
}

/** Chains visited per collection at most. */
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
  #keys: number[] = [];
  #pos = 0;
  #passStart = 0;
  #active = false;
  #extra: FlowEntry[] = [];
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
    this.#keys = this.#owner.cache.dumpKeys();
    this.#pos = 0;
    this.#passStart = performance.now();
    this.#active = true;
    this.#schedule();
  }

  /** Rechecks one entry soon (if it is still older than the current generation then). */
  queue(e: FlowEntry): void {
    this.#extra.push(e);
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

  #stale(e: FlowEntry, gen: number): boolean {
    return e.linked && !e.revalidating && e.generation < gen &&
      (e.state === FlowState.Allowed || e.state === FlowState.Denied || e.state === FlowState.Revoked);
  }

  #take(e: FlowEntry, gen: number, out: FlowEntry[]): void {
    if (!this.#stale(e, gen) || this.#owner.settleUnselected(e)) return;
    e.revalidating = true;
    out.push(e);
  }

  /**
   * Up to `max` stale entries: queued ones first, then from the key dump. Visits at
   * most VISIT_BUDGET chains, so a cache whose entries need no evaluation (settled in
   * place) is still walked a slice at a time.
   */
  #collect(out: FlowEntry[], max: number): void {
    const gen = this.#owner.generation;
    while (this.#extra.length > 0 && out.length < max) this.#take(this.#extra.pop()!, gen, out);
    if (!this.#active) return;
    const cache = this.#owner.cache;
    const keys = this.#keys;
    const stop = Math.min(keys.length, this.#pos + VISIT_BUDGET);
    while (out.length < max && this.#pos < stop) {
      // A few chains at a time, so a chunk does not overshoot by much.
      const end = Math.min(stop, this.#pos + 64);
      cache.forEachIn(keys, this.#pos, end, (e) => this.#take(e, gen, out));
      this.#pos = end;
    }
  }

  #run(): void {
    this.#scheduled = false;
    const owner = this.#owner;
    const sync = owner.evaluator.sync;
    const deadline = performance.now() + this.sliceMs;
    for (;;) {
      if (!sync && this.#inFlight >= this.maxInFlight) return; // a completion reschedules
      const batch: FlowEntry[] = [];
      this.#collect(batch, sync ? this.inlineChunk : this.chunk);
      if (batch.length === 0) {
        if (this.#active && this.#pos < this.#keys.length) {
          this.#schedule(); // more chains to walk: let I/O run first
          return;
        }
        if (this.#active && this.#inFlight === 0) this.#finishPass();
        if (!this.busy) this.#wakeIdle();
        return;
      }
      const req = this.#pack(batch);
      if (sync) {
        const res = newResponse(0, batch.length);
        try {
          owner.evaluator.evaluateSync(req, res);
          this.flows += batch.length;
          owner.applyRevalidation(batch, res);
        } catch (err) {
          for (const e of batch) e.revalidating = false;
          owner.revalidationFailed(batch, err);
        }
      } else {
        this.#inFlight++;
        owner.evaluator.evaluate(req).then(
          (res) => {
            this.#inFlight--;
            this.flows += batch.length;
            owner.applyRevalidation(batch, res);
            this.#schedule();
          },
          (err: unknown) => {
            this.#inFlight--;
            for (const e of batch) e.revalidating = false;
            owner.revalidationFailed(batch, err);
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

  #pack(batch: readonly FlowEntry[]): Int32Array {
    const req = newRequest(this.#owner.generation, batch.length);
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i];
      const q = HEADER_WORDS + i * REQUEST_WORDS;
      e.writeTo(req, q);
      req[q + Q_SIDES] = (e.from !== undefined ? Side.Egress : 0) | (e.to !== undefined ? Side.Ingress : 0);
    }
    return req;
  }

  #finishPass(): void {
    this.#active = false;
    this.#keys = [];
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
