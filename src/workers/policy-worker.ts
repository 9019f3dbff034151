// Piscina entry point: evaluates one batch of flow-cache misses (or of flows to
// revalidate) against the snapshot this worker holds. Snapshots arrive on the
// pool's BroadcastChannel (snapshot-channel.ts), not with the tasks; a task
// carries the generation it needs and waits briefly for it.
//
// Loaded by piscina as the compiled dist/src/workers/policy-worker.js.

import { BroadcastChannel } from 'node:worker_threads';
import { move, workerData } from 'piscina';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { evaluateBatch } from './batch-eval.js';
import { H_COUNT, H_GENERATION, newResponse } from './batch-format.js';
import type { ChannelMessage, PolicyWorkerData } from './snapshot-channel.js';

const data = workerData as PolicyWorkerData;
let snapshot: PolicySnapshot | undefined = undefined;
let generation = 0;
const waiters = new Set<() => void>();

const channel = new BroadcastChannel(data.channel);
channel.onmessage = (ev: unknown): void => {
  const m = (ev as MessageEvent<ChannelMessage>).data;
  if (m.type !== 'snapshot' || m.generation <= generation) return;
  snapshot = m.snapshot;
  generation = m.generation;
  for (const w of waiters) w();
};
// The pool keeps the worker alive; the channel must not.
channel.unref();

function waitForGeneration(wanted: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      if (generation < wanted) return;
      clearTimeout(ask);
      clearTimeout(fail);
      waiters.delete(done);
      resolve();
    };
    // Usually the broadcast is already queued and arrives on the next turn; if not,
    // this worker started after it, so ask for it to be sent again.
    const ask = setTimeout(() => channel.postMessage({ type: 'need', generation: wanted, have: generation } satisfies ChannelMessage), data.askAfterMs);
    const fail = setTimeout(() => {
      waiters.delete(done);
      clearTimeout(ask);
      reject(new Error(`policy worker: snapshot generation ${wanted} did not arrive within ${data.timeoutMs} ms (have ${generation})`));
    }, data.timeoutMs);
    waiters.add(done);
  });
}

/** One task: a request (batch-format.ts) in, a response out, both transferred. */
export default async function evaluateTask(req: Int32Array): Promise<unknown> {
  const wanted = req[H_GENERATION];
  if (generation < wanted) await waitForGeneration(wanted);
  const res = newResponse(generation, req[H_COUNT]);
  evaluateBatch(snapshot, req, res);
  return move(res);
}
