// What `sluice bench` reports: per system the median of the repetitions (throughput, packets/s,
// CPU), ping percentiles over all replies, and every figure's ratio to the kernel's VXLAN, as a
// markdown table, as JSON (`--json`), as an SVG bar chart (`--plot`), and as a generated section
// of bench/RESULTS.md (between this module's own markers; the rest of the file is left alone).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { median, percentile } from '../test/integration/helpers/traffic.js';
import type { BenchKind } from './sluice-bench-systems.js';
import type { IperfResult } from './sluice-bench-traffic.js';

export interface SystemRuns {
  kind: BenchKind;
  tcp1: IperfResult[];
  tcp4: IperfResult[];
  udp: IperfResult[];
  /** Every ping reply of every repetition, µs. */
  rtts: number[];
  pingLost: number;
}

/** One row of the results; the first six fields are the issue's JSON contract. */
export interface SystemSummary {
  system: BenchKind;
  tcp1_gbps: number;
  tcp4_gbps: number;
  udp_pps: number;
  ping_p50_us: number;
  ping_p99_us: number;
  /** Machine CPU seconds (all CPUs) per GB received, TCP 1 stream. */
  cpu_s_per_gb: number;
  tcp1_retransmits: number;
  udp_loss_percent: number;
  /** Forwarding processes h1 / h2 during TCP 1 stream, percent of one core (empty for the kernel). */
  proc_cpu_percent: number[];
  ping_lost: number;
  repetitions: number;
}

export function summarise(r: SystemRuns): SystemSummary {
  const med = (xs: IperfResult[], f: (x: IperfResult) => number) => median(xs.map(f));
  const procs = r.tcp1[0]?.procCpu.length ?? 0;
  return {
    system: r.kind,
    tcp1_gbps: med(r.tcp1, (x) => x.bitsPerSecond) / 1e9,
    tcp4_gbps: med(r.tcp4, (x) => x.bitsPerSecond) / 1e9,
    udp_pps: med(r.udp, (x) => x.packetsPerSecond),
    ping_p50_us: percentile(r.rtts, 50),
    ping_p99_us: percentile(r.rtts, 99),
    cpu_s_per_gb: med(r.tcp1, (x) => x.cpuSecondsPerGB),
    tcp1_retransmits: med(r.tcp1, (x) => x.retransmits),
    udp_loss_percent: med(r.udp, (x) => x.lostPercent),
    proc_cpu_percent: Array.from({ length: procs }, (_, i) => med(r.tcp1, (x) => x.procCpu[i])),
    ping_lost: r.pingLost,
    repetitions: r.tcp1.length,
  };
}

const f = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

/** The table, with each figure's ratio to kernel-vxlan when it was measured. */
export function markdownTable(rows: readonly SystemSummary[]): string {
  const k = rows.find((r) => r.system === 'kernel-vxlan');
  const ratio = (a: number, b: number | undefined) => (k === undefined || b === undefined || !Number.isFinite(a) || !b ? '' : ` (${f(a / b, 2)}×)`);
  const lines = [
    '| system | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | UDP 1400 B kpps (loss) | ping p50 µs | ping p99 µs | CPU s/GB | forwarder CPU h1/h2 | TCP retr. |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.system} | ${f(r.tcp1_gbps, 2)}${ratio(r.tcp1_gbps, k?.tcp1_gbps)} | ${f(r.tcp4_gbps, 2)}${ratio(r.tcp4_gbps, k?.tcp4_gbps)} | ` +
      `${f(r.udp_pps / 1000, 0)}${ratio(r.udp_pps, k?.udp_pps)} (${f(r.udp_loss_percent, 0)}%) | ` +
      `${f(r.ping_p50_us, 0)}${ratio(r.ping_p50_us, k?.ping_p50_us)} | ${f(r.ping_p99_us, 0)}${ratio(r.ping_p99_us, k?.ping_p99_us)} | ` +
      `${f(r.cpu_s_per_gb, 2)}${ratio(r.cpu_s_per_gb, k?.cpu_s_per_gb)} | ` +
      `${r.proc_cpu_percent.length ? r.proc_cpu_percent.map((c) => `${f(c, 0)}%`).join(' / ') : r.system === 'kernel-vxlan' ? '— (kernel)' : 'n/a'} | ` +
      `${f(r.tcp1_retransmits, 0)} |`);
  }
  return lines.join('\n');
}

/** `--json`: the issue's fields first, then the extra ones. */
export function jsonReport(rows: readonly SystemSummary[], meta: Record<string, unknown>): string {
  const round = (n: number, d: number) => (Number.isFinite(n) ? Number(n.toFixed(d)) : null);
  return JSON.stringify({
    results: rows.map((r) => ({
      system: r.system,
      tcp1_gbps: round(r.tcp1_gbps, 3),
      tcp4_gbps: round(r.tcp4_gbps, 3),
      udp_pps: round(r.udp_pps, 0),
      ping_p50_us: round(r.ping_p50_us, 0),
      ping_p99_us: round(r.ping_p99_us, 0),
      cpu_s_per_gb: round(r.cpu_s_per_gb, 3),
      tcp1_retransmits: r.tcp1_retransmits,
      udp_loss_percent: round(r.udp_loss_percent, 1),
      proc_cpu_percent: r.proc_cpu_percent.map((c) => round(c, 0)),
      ping_lost: r.ping_lost,
      repetitions: r.repetitions,
    })),
    ...meta,
  }, null, 2);
}

const COLORS: Record<string, string> = {
  'sluice-vxlan': '#1f77b4', 'sluice-udp': '#6baed6', 'sluice-vxlan-nooffload': '#9ecae1', 'sluice-vxlan-baseline': '#c6dbef',
  'sluice-vxlan-2t': '#08519c', 'sluice-vxlan-2n': '#3182bd', 'sluice-vxlan-lowlat': '#4292c6',
  'kernel-vxlan': '#2ca02c', openvpn: '#ff7f0e', tinc: '#d62728',
};

/** A bar chart per metric (one panel each), a bar per system, values printed on the bars. */
export function svgChart(rows: readonly SystemSummary[], title: string): string {
  const panels: { label: string; value: (r: SystemSummary) => number; fmt: (n: number) => string }[] = [
    { label: 'TCP 1 stream, Gbit/s', value: (r) => r.tcp1_gbps, fmt: (n) => f(n, 2) },
    { label: 'TCP 4 streams, Gbit/s', value: (r) => r.tcp4_gbps, fmt: (n) => f(n, 2) },
    { label: 'UDP 1400 B, kpackets/s', value: (r) => r.udp_pps / 1000, fmt: (n) => f(n, 0) },
    { label: 'ping p99, µs (lower is better)', value: (r) => r.ping_p99_us, fmt: (n) => f(n, 0) },
  ];
  const pw = 300, bar = 22, gap = 8, top = 60, labelW = 170;
  const ph = rows.length * (bar + gap);
  const width = labelW + panels.length * (pw + 20) + 10, height = top + ph + 30;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  rows.forEach((r, i) => out.push(`<text x="${labelW - 8}" y="${top + i * (bar + gap) + bar * 0.7}" text-anchor="end">${esc(r.system)}</text>`));
  panels.forEach((p, j) => {
    const x0 = labelW + j * (pw + 20);
    const max = Math.max(...rows.map((r) => (Number.isFinite(p.value(r)) ? p.value(r) : 0)), 1e-9);
    out.push(`<text x="${x0}" y="${top - 12}" font-weight="bold">${esc(p.label)}</text>`);
    out.push(`<line x1="${x0}" y1="${top - 4}" x2="${x0}" y2="${top + ph}" stroke="#888"/>`);
    rows.forEach((r, i) => {
      const v = p.value(r);
      const w = Number.isFinite(v) ? Math.max(1, (v / max) * (pw - 50)) : 0;
      const y = top + i * (bar + gap);
      out.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${COLORS[r.system] ?? '#999'}"/>`);
      out.push(`<text x="${(x0 + w + 4).toFixed(1)}" y="${y + bar * 0.7}">${esc(Number.isFinite(v) ? p.fmt(v) : 'n/a')}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

export const BEGIN = '<!-- sluice bench: begin generated -->';
export const END = '<!-- sluice bench: end generated -->';
const SECTION = '## `sluice bench`: Sluice vs the kernel\'s VXLAN, OpenVPN and tinc';

/** Replaces this bench's generated block in `path` (adding a section at the end the first time). */
export function updateResults(path: string, block: string): void {
  const generated = `${BEGIN}\n${block.trim()}\n${END}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmark results\n';
  const a = text.indexOf(BEGIN), b = text.indexOf(END);
  const next = a >= 0 && b > a
    ? text.slice(0, a) + generated + text.slice(b + END.length)
    : `${text.trimEnd()}\n\n${SECTION}\n\n${generated}\n`;
  writeFileSync(path, next);
}
