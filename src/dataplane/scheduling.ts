// Real-time scheduling for the data path. The forwarder runs on the JS thread; with SCHED_FIFO
// that thread is not made to wait behind CPU-bound neighbours, which is what long ping tails
// through a userspace data path are made of (measured on a shared 2-vCPU VM: p99 3-33 ms →
// 0.6 ms, throughput unchanged). Off by default: it needs CAP_SYS_NICE, and a real-time busy
// thread is only bounded by the kernel's RT throttling (sched_rt_runtime_us, 95% by default).
//
// With datapath threads (--datapath-threads n > 1) the native threads get the same priority
// (native.datapathStart, pthread_setschedparam); a refusal is reported like the JS thread's.
//
// Environment: SLUICE_REALTIME=<1..99> (SCHED_FIFO priority); 0 or unset: normal scheduling.
import { isNativeSystemError, native } from '../native/binding.js';

export function realtimeFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SLUICE_REALTIME;
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new TypeError(`SLUICE_REALTIME: expected a SCHED_FIFO priority 0..99, got ${JSON.stringify(v)}`);
  return n;
}

/** Puts the calling thread in SCHED_FIFO at `priority` (0: leaves it alone); returns why it could not, or undefined. */
export function applyRealtime(priority: number): string | undefined {
  if (priority === 0) return undefined;
  try {
    native.setRealtime(priority);
    return undefined;
  } catch (err) {
    return `SCHED_FIFO ${priority} refused (${isNativeSystemError(err) ? err.code : String(err)})`;
  }
}
