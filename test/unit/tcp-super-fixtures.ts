// TCP packets for the offload tests: super-packets as a TSO TUN hands them
// over, the segments they must be cut into, and a checker that parses a
// segment with the TypeScript checksum reference (not the addon).
import assert from 'node:assert/strict';
import { ipv4HeaderChecksum, l4Checksum } from '../../src/packet/checksum.js';

export const SRC4 = [10, 244, 1, 2], DST4 = [10, 244, 2, 2];
export const SRC6 = [0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
export const DST6 = [0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2];
export const ACK = 0x10, PSH = 0x08, FIN = 0x01, SYN = 0x02, CWR = 0x80;

export interface TcpSpec {
  version: 4 | 6;
  seq: number;
  ack?: number;
  flags: number;
  payload: Uint8Array;
  /** TCP options (multiple of 4 bytes); default a 12-byte timestamp option. */
  options?: Uint8Array;
  ipId?: number;
  window?: number;
  ttl?: number;
  srcPort?: number;
}

const TS_OPTION = Uint8Array.from([1, 1, 8, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0]);

/** Deterministic pseudo-random bytes. */
export function bytes(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed | 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A complete TCP packet with correct IP and TCP checksums. */
export function tcpPacket(s: TcpSpec): Buffer {
  const opts = s.options ?? TS_OPTION;
  const iphl = s.version === 4 ? 20 : 40;
  const tcphl = 20 + opts.length;
  const total = iphl + tcphl + s.payload.length;
  const b = Buffer.alloc(total);
  if (s.version === 4) {
    b[0] = 0x45;
    b.writeUInt16BE(total, 2);
    b.writeUInt16BE(s.ipId ?? 0x1234, 4);
    b[6] = 0x40; // DF
    b[8] = s.ttl ?? 64;
    b[9] = 6;
    b.set(SRC4, 12);
    b.set(DST4, 16);
    b.writeUInt16BE(ipv4HeaderChecksum(b, 0), 10);
  } else {
    b[0] = 0x60;
    b.writeUInt16BE(total - 40, 4);
    b[6] = 6;
    b[7] = s.ttl ?? 64;
    b.set(SRC6, 8);
    b.set(DST6, 24);
  }
  const t = iphl;
  b.writeUInt16BE(s.srcPort ?? 40000, t);
  b.writeUInt16BE(5201, t + 2);
  b.writeUInt32BE(s.seq >>> 0, t + 4);
  b.writeUInt32BE((s.ack ?? 777) >>> 0, t + 8);
  b[t + 12] = (tcphl / 4) << 4;
  b[t + 13] = s.flags;
  b.writeUInt16BE(s.window ?? 502, t + 14);
  b.set(opts, t + 20);
  b.set(s.payload, t + tcphl);
  b.writeUInt16BE(l4Checksum(b, 0, t, total - t, 6, 16), t + 16);
  return b;
}

export interface Segment {
  ipId: number;
  seq: number;
  flags: number;
  payload: Buffer;
}

/** Parses one TCP segment, asserting that its lengths and both checksums are right. */
export function checkSegment(b: Buffer, off: number, len: number, version: 4 | 6): Segment {
  const iphl = version === 4 ? 20 : 40;
  assert.equal(b[off] >> 4, version, 'IP version');
  if (version === 4) {
    assert.equal(b.readUInt16BE(off + 2), len, 'IPv4 total length');
    assert.equal(b.readUInt16BE(off + 10), ipv4HeaderChecksum(b, off), 'IPv4 header checksum');
  } else {
    assert.equal(b.readUInt16BE(off + 4), len - 40, 'IPv6 payload length');
  }
  const t = off + iphl;
  const tcphl = (b[t + 12] >> 4) * 4;
  assert.equal(b.readUInt16BE(t + 16), l4Checksum(b, off, t, len - iphl, 6, 16), 'TCP checksum');
  return {
    ipId: version === 4 ? b.readUInt16BE(off + 4) : 0,
    seq: b.readUInt32BE(t + 4),
    flags: b[t + 13],
    payload: Buffer.from(b.subarray(t + tcphl, off + len)),
  };
}
