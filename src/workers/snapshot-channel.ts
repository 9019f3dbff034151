// How the compiled snapshot reaches pool workers: once per change, on a
// BroadcastChannel every worker listens on — never inside a task. A worker that
// started after the broadcast (or was respawned) asks for it with a `need`
// message, and the pool broadcasts the current snapshot again.

import type { PolicySnapshot } from '../policy/snapshot.js';

export type ChannelMessage =
  | { type: 'snapshot'; generation: number; snapshot: PolicySnapshot | undefined }
  /** A worker waiting for `generation` that holds `have`. */
  | { type: 'need'; generation: number; have: number };

/** Data every policy worker starts with (piscina `workerData`). */
export interface PolicyWorkerData {
  /** BroadcastChannel name, unique per pool. */
  channel: string;
  /** How long a task waits for its generation before asking for it again / failing. */
  askAfterMs: number;
  timeoutMs: number;
}

let pools = 0;

/** A channel name no other pool in this process (or another process) uses. */
export function newChannelName(): string {
  return `sluice-policy-${process.pid}-${++pools}-${Math.random().toString(36).slice(2, 10)}`;
}
