// Summaries of the throughput bench and the generated part of bench/RESULTS.md. The file keeps
// hand-written notes; only the text between the two markers is replaced on each run.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { median, percentile } from '../test/integration/helpers/traffic.js';
import type { SystemKind } from './systems.js';

export interface Run {
  gbps: number;
  retransmits: number;
  /** Percent of one core, per daemon (h1 = sender side, h2 = receiver side). */
  daemonCpu: number[];
  machineBusy: number;
  pingLoss: number;
}

export interface SystemResult {
  kind: SystemKind;
  runs: Run[];
  /** Every ping reply of every repetition, ms. */
  rtts: number[];
}

export interface Summary {
  kind: SystemKind;
  gbps: number;
  gbpsMin: number;
  gbpsMax: number;
  retransmits: number;
  p50: number;
  p99: number;
  daemonCpu: number[];
  machineBusy: number;
  pingLoss: number;
}

export function summarise(r: SystemResult): Summary {
  const g = r.runs.map((x) => x.gbps);
  const daemons = r.runs[0]?.daemonCpu.length ?? 0;
  return {
    kind: r.kind,
    gbps: median(g),
    gbpsMin: Math.min(...g),
    gbpsMax: Math.max(...g),
    retransmits: median(r.runs.map((x) => x.retransmits)),
    p50: percentile(r.rtts, 50),
    p99: percentile(r.rtts, 99),
    daemonCpu: Array.from({ length: daemons }, (_, i) => median(r.runs.map((x) => x.daemonCpu[i]))),
    machineBusy: median(r.runs.map((x) => x.machineBusy)),
    pingLoss: r.runs.reduce((a, x) => a + x.pingLoss, 0),
  };
}

const f = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

export function table(rows: readonly Summary[]): string {
  const k = rows.find((r) => r.kind === 'kernel-vxlan');
  const ratio = (a: number, b: number | undefined) => (b === undefined || !Number.isFinite(a) || !b ? 'n/a' : `${f(a / b, 2)}×`);
  const lines = [
    '| system | TCP Gbit/s, median (min–max) | vs kernel VXLAN | retransmits/run | ping p50 ms | ping p99 ms | p50 vs kernel | daemon CPU h1 / h2 (% of a core) | machine CPU busy |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.kind} | ${f(r.gbps, 2)} (${f(r.gbpsMin, 2)}–${f(r.gbpsMax, 2)}) | ${ratio(r.gbps, k?.gbps)} | ${f(r.retransmits, 0)} | ` +
      `${f(r.p50, 3)} | ${f(r.p99, 3)} | ${ratio(r.p50, k?.p50)} | ` +
      `${r.daemonCpu.length ? r.daemonCpu.map((c) => f(c, 0)).join(' / ') : '— (in kernel)'} | ${f(r.machineBusy, 0)}% |`);
  }
  return lines.join('\n');
}

export const BEGIN = '<!-- bench/throughput.ts: begin generated -->';
export const END = '<!-- bench/throughput.ts: end generated -->';

const SECTION = `## Pod-to-pod TCP throughput and latency: Sluice vs the kernel's VXLAN (\`bench/throughput.ts\`)

${BEGIN}
${END}
`;

/**
 * Replaces the generated block of `path`. A missing file is created; a file without the block
 * gets this section right under its title, before the other sections.
 */
export function updateResults(path: string, block: string): void {
  let text = existsSync(path) ? readFileSync(path, 'utf8') : `# Benchmark results\n\n${SECTION}`;
  if (!text.includes(BEGIN) || !text.includes(END)) {
    const title = /^# .*\n+/m.exec(text);
    const at = title ? title.index + title[0].length : 0;
    text = `${text.slice(0, at)}${SECTION}\n${text.slice(at)}`;
  }
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  writeFileSync(path, `${text.slice(0, a)}${BEGIN}\n${block.trim()}\n${text.slice(b)}`);
}
