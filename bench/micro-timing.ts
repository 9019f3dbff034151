// Timing for the micro-benchmarks: run a body in a loop until it has taken
// ~100 ms, five times, and report the median ns per operation (the spread of
// the five is printed too, so a noisy machine shows). No allocation in the
// measured loop: bodies take an iteration index and return a number that is
// accumulated, so V8 cannot drop them as dead code.

export interface Timing {
  nsPerOp: number;
  /** Fastest and slowest of the five rounds, ns/op. */
  min: number;
  max: number;
}

let sink = 0;

export function time(body: (i: number) => number, roundMs = 100): Timing {
  // Warm-up and calibration: find an iteration count that takes ~roundMs.
  let iters = 16;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) sink += body(i);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= roundMs / 4) {
      iters = Math.max(1, Math.round(iters * (roundMs / ms)));
      break;
    }
    iters *= 4;
  }
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) sink += body(i);
    rounds.push(Number(process.hrtime.bigint() - t0) / iters);
  }
  rounds.sort((a, b) => a - b);
  return { nsPerOp: rounds[2], min: rounds[0], max: rounds[4] };
}

/** Keeps the accumulated results observable (call once at the end). */
export function consume(): number {
  return sink;
}

export function fmtNs(t: Timing): string {
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  return `${f(t.nsPerOp)} (${f(t.min)}–${f(t.max)})`;
}

/** A markdown table. */
export function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
