// Where flow-cache misses and revalidations get their verdicts: one interface,
// two implementations — InlineEvaluator (the main thread, synchronous) and
// PolicyPool (piscina workers holding the snapshot). Both run evaluateBatch().

import type { PolicySnapshot } from '../policy/snapshot.js';
import { evaluateBatch } from './batch-eval.js';
import { H_COUNT, H_GENERATION, newResponse } from './batch-format.js';

export interface PolicyEvaluator {
  /** True when evaluateSync is available (then a miss is answered inside decide()). */
  readonly sync: boolean;
  /** Installs the snapshot of `generation` (monotonic); later requests carry that generation. */
  setSnapshot(snapshot: PolicySnapshot | undefined, generation: number): void;
  /**
   * Evaluates a request (batch-format.ts). Ownership of `req` passes to the evaluator
   * (its buffer may be transferred). Resolves with the response.
   */
  evaluate(req: Int32Array): Promise<Int32Array>;
  /** Synchronous evaluation into `res` (only when `sync`). */
  evaluateSync(req: Int32Array, res: Int32Array): void;
  close(): Promise<void>;
}

/** Evaluates on the calling thread: no hand-off, no hold, the verdict is known at once. */
export class InlineEvaluator implements PolicyEvaluator {
  readonly sync = true;
  #snapshot: PolicySnapshot | undefined = undefined;
  #generation = 0;

  setSnapshot(snapshot: PolicySnapshot | undefined, generation: number): void {
    this.#snapshot = snapshot;
    this.#generation = generation;
  }

  evaluate(req: Int32Array): Promise<Int32Array> {
    try {
      const res = newResponse(this.#generation, req[H_COUNT]);
      this.evaluateSync(req, res);
      return Promise.resolve(res);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  evaluateSync(req: Int32Array, res: Int32Array): void {
    res[H_GENERATION] = this.#generation;
    res[H_COUNT] = req[H_COUNT];
    evaluateBatch(this.#snapshot, req, res);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
