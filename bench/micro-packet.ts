// Per-packet costs of the data path's building blocks, in ns:
//   - parse: FlowKeyParser.parse (IP + L4 into a flow key) for TCP/UDP over IPv4/IPv6
//   - encap / decap: the VXLAN and udp backends, in place
//   - coalesce: native.groCoalesce merging a 44-segment UDP_GRO train into one
//     TCP super-packet (checksums verified, payload moved), per train and per segment
//
//   node dist/bench/micro-packet.js [--json]
import { parseArgs } from 'node:util';
import { native } from '../src/native/binding.js';
import { Peer } from '../src/overlay/peer.js';
import { UdpBackend } from '../src/overlay/udp-encap.js';
import { VXLAN_HEADROOM, VxlanBackend } from '../src/overlay/vxlan.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';
import { FlowKey } from '../src/packet/flow-key.js';
import { tcp4, tcp6, udp4, udp6 } from '../test/unit/packet-fixtures.js';
import { ACK, bytes, tcpPacket } from '../test/unit/tcp-super-fixtures.js';
import { consume, fmtNs, table, time } from './micro-timing.js';

export interface PacketRow {
  what: string;
  ns: number;
}

function parseRows(md: string[][], rows: PacketRow[]): void {
  const parser = new FlowKeyParser();
  const key = new FlowKey();
  const payload = Buffer.alloc(1400);
  const cases: [string, Buffer][] = [
    ['parse TCP/IPv4 1440 B', tcp4('10.244.1.2', '10.244.2.2', 40000, 5201, 0x10, payload)],
    ['parse UDP/IPv4 1428 B', udp4('10.244.1.2', '10.244.2.2', 40000, 5201, payload)],
    ['parse TCP/IPv6 1460 B', tcp6('fd00::1', 'fd00::2', 40000, 5201, 0x10, payload)],
    ['parse UDP/IPv6 1448 B', udp6('fd00::1', 'fd00::2', 40000, 5201, payload)],
  ];
  for (const [what, pkt] of cases) {
    const t = time(() => parser.parse(pkt, 0, pkt.length, key));
    rows.push({ what, ns: t.nsPerOp });
    md.push([what, fmtNs(t)]);
  }
}

function overlayRows(md: string[][], rows: PacketRow[]): void {
  const peerA = new Peer({ name: 'a', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', vtepMAC: '02:00:0a:f4:01:00' }, 8472);
  const peerB = new Peer({ name: 'b', publicIP: '10.99.0.2', subnet: '10.244.2.0/24', vtepMAC: '02:00:0a:f4:02:00' }, 8472);
  const localA = { vtepMac: peerA.vtepMac }, localB = { vtepMac: peerB.vtepMac };
  const vxA = new VxlanBackend({ local: localA }), vxB = new VxlanBackend({ local: localB });
  const udpA = new UdpBackend({ local: localA }), udpB = new UdpBackend({ local: localB });
  const pkt = tcp4('10.244.1.2', '10.244.2.2', 40000, 5201, 0x10, Buffer.alloc(1400));
  const buf = Buffer.alloc(64 + pkt.length);
  pkt.copy(buf, 64);
  const cases: [string, (i: number) => number][] = [
    ['VXLAN encap', () => vxA.encap(buf, 64, pkt.length, peerB, localA)],
    ['VXLAN decap (+ inner source check)', () => vxB.decap(buf, 64 - VXLAN_HEADROOM, pkt.length + VXLAN_HEADROOM, peerA)],
    ['udp encap', () => udpA.encap(buf, 64, pkt.length, peerB, localA)],
    ['udp decap (+ inner source check)', () => udpB.decap(buf, 64, pkt.length, peerA)],
  ];
  vxA.encap(buf, 64, pkt.length, peerB, localA);
  for (const [what, body] of cases) {
    const t = time(body);
    rows.push({ what, ns: t.nsPerOp });
    md.push([what, fmtNs(t)]);
  }
}

function coalesceRows(md: string[][], rows: PacketRow[]): void {
  const SEGS = 44, MSS = 1388, SLOT = 65536 + 64;
  const prefix = Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]);
  const data = bytes(SEGS * MSS, 1);
  const pristine = Buffer.alloc(SLOT);
  let at = 64;
  for (let k = 0; k < SEGS; k++) {
    const seg = tcpPacket({ version: 4, seq: 1000 + k * MSS, flags: ACK, payload: data.subarray(k * MSS, (k + 1) * MSS) });
    prefix.copy(pristine, at);
    seg.copy(pristine, at + prefix.length);
    at += prefix.length + seg.length;
  }
  const segLen = (at - 64) / SEGS;
  const buf = Buffer.alloc(SLOT);
  const offsets = Int32Array.of(64), lengths = Int32Array.of(at - 64), gso = Int32Array.of(segLen);
  const addrs = Uint32Array.of(1), ports = Uint16Array.of(8472);
  const oo = new Int32Array(128), ol = new Int32Array(128), og = new Int32Array(128), os = new Int32Array(128);
  const restore = time(() => { pristine.copy(buf, 0, 0, at); return buf[70]; });
  const both = time(() => {
    pristine.copy(buf, 0, 0, at);
    return native.groCoalesce(buf, offsets, lengths, gso, addrs, ports, 1, 65536, prefix.length, oo, ol, og, os);
  });
  const ns = both.nsPerOp - restore.nsPerOp;
  rows.push({ what: `coalesce ${SEGS}×${MSS} B train`, ns }, { what: 'coalesce, per segment', ns: ns / SEGS });
  md.push([`coalesce a ${SEGS}×${MSS} B UDP_GRO train into one super-packet (checksums verified, payload moved)`,
    `${ns.toFixed(0)} (${(ns / SEGS).toFixed(0)} per segment; ${((SEGS * MSS) / ns).toFixed(1)} GB/s)`]);
}

export function runPacketBench(): { rows: PacketRow[]; markdown: string } {
  const rows: PacketRow[] = [];
  const md: string[][] = [];
  parseRows(md, rows);
  overlayRows(md, rows);
  coalesceRows(md, rows);
  consume();
  return { rows, markdown: table(['operation', 'ns per packet, median (min–max of 5 rounds)'], md) };
}

if (process.argv[1]?.endsWith('micro-packet.js')) {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
  const r = runPacketBench();
  process.stdout.write(values.json ? `${JSON.stringify({ packet: r.rows }, null, 2)}\n` : `${r.markdown}\n`);
}
