// Internet checksum throughput: the native addon (one call per buffer, as the
// data path would call it) against the TypeScript reference, per size.
//
//   node dist/bench/micro-checksum.js [--json]
//
// Native numbers include the Node-API crossing (~50 ns with a Buffer
// argument), which is why the addon never checksums a single small header
// per call on the hot path — it checksums inside its batch functions.
import { parseArgs } from 'node:util';
import { native } from '../src/native/binding.js';
import { sum16 } from '../src/packet/checksum.js';
import { consume, fmtNs, table, time } from './micro-timing.js';

const SIZES = [20, 64, 576, 1500, 9000, 65536];

export interface ChecksumRow {
  bytes: number;
  nativeNs: number;
  tsNs: number;
  nativeGBps: number;
  tsGBps: number;
}

export function runChecksumBench(): { rows: ChecksumRow[]; markdown: string } {
  const buf = Buffer.alloc(65536 + 64);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
  const rows: ChecksumRow[] = [];
  const md: string[][] = [];
  for (const n of SIZES) {
    // Offsets 0..7 so alignment varies as in real slots.
    const nat = time((i) => native.checksum(buf, i & 7, n));
    const ts = time((i) => sum16(buf, i & 7, n));
    const row = { bytes: n, nativeNs: nat.nsPerOp, tsNs: ts.nsPerOp, nativeGBps: n / nat.nsPerOp, tsGBps: n / ts.nsPerOp };
    rows.push(row);
    md.push([String(n), fmtNs(nat), row.nativeGBps.toFixed(2), fmtNs(ts), row.tsGBps.toFixed(2), (ts.nsPerOp / nat.nsPerOp).toFixed(1) + '×']);
  }
  consume();
  return {
    rows,
    markdown: table(['bytes', 'native ns (min–max)', 'native GB/s', 'TS ns (min–max)', 'TS GB/s', 'native speed-up'], md),
  };
}

if (process.argv[1]?.endsWith('micro-checksum.js')) {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
  const r = runChecksumBench();
  process.stdout.write(values.json ? `${JSON.stringify({ checksum: r.rows }, null, 2)}\n` : `${r.markdown}\n`);
}
