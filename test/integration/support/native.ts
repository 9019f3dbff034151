// Shared by the tests of the native addon and of the datapath threads: waiting on
// counters the addon updates, and which thread a flow lands on.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `done()` holds, checking every 5 ms; rejects after `ms`. */
export async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);

/**
 * native/fastpath-core.h FlowSpread modulo `threads`: the thread (TUN queue, and socket the BPF
 * program steers to) a flow lands on. Symmetric, like the kernel's steering.
 */
export function threadOf(src: string, dst: string, sport: number, dport: number, threads = 2): number {
  let a = (ipToInt(src) ^ ipToInt(dst) ^ ((sport ^ dport) & 0xffff)) >>> 0;
  a = (a ^ (a >>> 16)) >>> 0;
  a = Math.imul(a, 0x9e3779b1) >>> 0;
  return (a >>> 16) % threads;
}
