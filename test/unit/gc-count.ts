// For tests that the hot path allocates nothing: run `work` `warmup` times (so the optimizing
// compiler is done), then count the garbage collections during `n` more. Zero means nothing
// was allocated per iteration (any steady allocation triggers scavenges within thousands).
import { PerformanceObserver } from 'node:perf_hooks';

export async function gcsDuring(work: (n: number) => void, n: number, warmup = 200_000): Promise<number> {
  work(warmup);
  await new Promise((r) => setTimeout(r, 50));
  let gcs = 0;
  const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  work(n);
  await new Promise((r) => setTimeout(r, 100));
  obs.disconnect();
  return gcs;
}
