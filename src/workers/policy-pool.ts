// A piscina pool of policy workers (policy-worker.ts). All misses of a batch go
// as one task; the snapshot goes to every worker once per change on a
// BroadcastChannel, and again to any worker that asks (a late or respawned one).
//
//   main                         BroadcastChannel                  worker k
//   setSnapshot(s, g) ── {snapshot, g} ──────────────────────────► holds s, g
//   evaluate([g, n, flows…]) ── piscina task (transferred) ──────► evaluateBatch
//        ◄──────────────────────── [g, n, results…] (transferred) ─┘
//   rebroadcast ◄── {need, g} ─── (a worker that missed it)

import { availableParallelism } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import { FixedQueue, Piscina } from 'piscina';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { PolicyEvaluator } from './evaluator.js';
import { newChannelName, type ChannelMessage, type PolicyWorkerData } from './snapshot-channel.js';

export interface PolicyPoolOptions {
  /** Worker threads (default: one less than the CPUs, 1..4). */
  threads?: number;
  /** A task waiting this long for its snapshot asks for it again (default 50 ms). */
  snapshotAskAfterMs?: number;
  /** A task waiting this long for its snapshot fails (default 2000 ms). */
  snapshotTimeoutMs?: number;
  /** piscina's atomics mode (default 'sync', piscina's default). */
  atomics?: 'sync' | 'async' | 'disabled';
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`PolicyPool: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

export class PolicyPool implements PolicyEvaluator {
  readonly sync = false;
  readonly threads: number;
  /** Snapshots sent again because a worker asked (it started after the broadcast). */
  rebroadcasts = 0;
  readonly #pool: Piscina;
  readonly #channel: BroadcastChannel;
  #snapshot: PolicySnapshot | undefined = undefined;
  #generation = 0;
  #rebroadcastQueued = false;
  #closed = false;

  constructor(opts: PolicyPoolOptions = {}) {
    this.threads = positiveInt('threads', opts.threads, Math.max(1, Math.min(4, availableParallelism() - 1)));
    const workerData: PolicyWorkerData = {
      channel: newChannelName(),
      askAfterMs: positiveInt('snapshotAskAfterMs', opts.snapshotAskAfterMs, 50),
      timeoutMs: positiveInt('snapshotTimeoutMs', opts.snapshotTimeoutMs, 2000),
    };
    this.#channel = new BroadcastChannel(workerData.channel);
    this.#channel.onmessage = (ev: unknown): void => {
      const m = (ev as MessageEvent<ChannelMessage>).data;
      if (m.type === 'need' && m.have < this.#generation) this.#queueRebroadcast();
    };
    this.#channel.unref();
    this.#pool = new Piscina({
      filename: new URL('./policy-worker.js', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 2 ** 31 - 1,
      recordTiming: false,
      taskQueue: new FixedQueue(),
      atomics: opts.atomics ?? 'sync',
      workerData,
    });
  }

  get generation(): number { return this.#generation; }

  setSnapshot(snapshot: PolicySnapshot | undefined, generation: number): void {
    if (generation <= this.#generation) {
      throw new RangeError(`PolicyPool.setSnapshot: generation ${generation} is not newer than ${this.#generation}`);
    }
    this.#snapshot = snapshot;
    this.#generation = generation;
    this.#broadcast();
  }

  evaluate(req: Int32Array): Promise<Int32Array> {
    if (this.#closed) return Promise.reject(new Error('PolicyPool: closed'));
    return this.#pool.run(req, { transferList: [req.buffer as ArrayBuffer] }) as Promise<Int32Array>;
  }

  evaluateSync(): void {
    throw new Error('PolicyPool: evaluation is asynchronous; use evaluate()');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
    await this.#pool.destroy();
  }

  #broadcast(): void {
    if (this.#closed) return;
    const m: ChannelMessage = { type: 'snapshot', generation: this.#generation, snapshot: this.#snapshot };
    this.#channel.postMessage(m);
  }

  /** Several workers may ask at once: answer them with one broadcast. */
  #queueRebroadcast(): void {
    if (this.#rebroadcastQueued) return;
    this.#rebroadcastQueued = true;
    setImmediate(() => {
      this.#rebroadcastQueued = false;
      this.rebroadcasts++;
      this.#broadcast();
    });
  }
}
