// Plain-text tables for the CLI: the first row is the header, columns padded.
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `  ${r.map((v, c) => (v ?? '').padEnd(widths[c])).join('  ')}`.trimEnd()).join('\n');
}
