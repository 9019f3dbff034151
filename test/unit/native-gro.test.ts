// groCoalesce (native/tcp-gro.cc): received TCP segments merged into
// super-packets by the kernel's GRO rules, checked with the TypeScript
// checksum reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { native } from '../../src/native/binding.js';
import { fold, ipv4HeaderChecksum, pseudoHeaderSum } from '../../src/packet/checksum.js';
import { ACK, FIN, PSH, SYN, bytes, tcpPacket, type TcpSpec } from './tcp-super-fixtures.js';

const PREFIX = Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]); // a VXLAN header, VNI 1
const SLOT = 65536 + 64;
const MAX_LEN = 65536;

interface Datagram {
  /** Packets of one datagram; several make a UDP_GRO train (all but the last the same size). */
  packets: Buffer[];
  prefix?: Buffer;
  addr?: number;
}

interface Out {
  off: number;
  len: number;
  gso: number;
  slot: number;
}

function coalesce(datagrams: Datagram[], cap = datagrams.length * 128) {
  const n = datagrams.length;
  const buf = Buffer.alloc(n * SLOT);
  const offsets = new Int32Array(n), lengths = new Int32Array(n), gso = new Int32Array(n);
  const addrs = new Uint32Array(n), ports = new Uint16Array(n);
  datagrams.forEach((d, i) => {
    offsets[i] = i * SLOT + 64;
    let at = offsets[i];
    const prefix = d.prefix ?? PREFIX;
    for (const p of d.packets) {
      prefix.copy(buf, at);
      p.copy(buf, at + prefix.length);
      at += prefix.length + p.length;
    }
    lengths[i] = at - offsets[i];
    gso[i] = d.packets.length > 1 ? PREFIX.length + d.packets[0].length : 0;
    addrs[i] = d.addr ?? 0x0a630002;
    ports[i] = 8472;
  });
  const outOff = new Int32Array(cap), outLen = new Int32Array(cap), outGso = new Int32Array(cap), outSlot = new Int32Array(cap);
  const np = native.groCoalesce(buf, offsets, lengths, gso, addrs, ports, n, MAX_LEN, PREFIX.length, outOff, outLen, outGso, outSlot);
  const out: Out[] = [];
  for (let p = 0; p < np; p++) out.push({ off: outOff[p], len: outLen[p], gso: outGso[p], slot: outSlot[p] });
  return { buf, out };
}

/** Stream segments of `mss` bytes from `data`, starting at seq 1000. */
function segments(data: Uint8Array, mss: number, spec: Partial<TcpSpec> & { version: 4 | 6 }, pshLast = true): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += mss) {
    const last = at + mss >= data.length;
    out.push(tcpPacket({ seq: 1000 + at, flags: ACK | (last && pshLast ? PSH : 0), payload: data.subarray(at, at + mss), ...spec }));
  }
  return out;
}

/** Checks a coalesced super-packet: its header fields, partial checksum, and payload. */
function checkSuper(buf: Buffer, o: Out, version: 4 | 6, payload: Uint8Array, mss: number, flags: number): void {
  const ip = o.off + PREFIX.length;
  const len = o.len - PREFIX.length;
  assert.equal(o.gso, mss, 'gso = MSS');
  assert.deepEqual(buf.subarray(o.off, ip), PREFIX, 'overlay prefix kept');
  const iphl = version === 4 ? 20 : 40;
  if (version === 4) {
    assert.equal(buf.readUInt16BE(ip + 2), len, 'IPv4 total length');
    assert.equal(buf.readUInt16BE(ip + 10), ipv4HeaderChecksum(buf, ip), 'IPv4 header checksum');
  } else {
    assert.equal(buf.readUInt16BE(ip + 4), len - 40, 'IPv6 payload length');
  }
  const t = ip + iphl;
  assert.equal(buf.readUInt16BE(t + 16), fold(pseudoHeaderSum(buf, ip, len - iphl, 6)), 'partial (pseudo-header) checksum');
  assert.equal(buf[t + 13], flags, 'TCP flags');
  const tcphl = (buf[t + 12] >> 4) * 4;
  assert.deepEqual(buf.subarray(t + tcphl, o.off + o.len), Buffer.from(payload), 'payload, in order');
}

for (const version of [4, 6] as const) {
  test(`IPv${version}: 40 segments, one datagram each, become one super-packet`, () => {
    const data = bytes(40 * 1000 - 123, version);
    const { buf, out } = coalesce(segments(data, 1000, { version }).map((p) => ({ packets: [p] })));
    assert.equal(out.length, 1);
    assert.equal(out[0].slot, 0);
    checkSuper(buf, out[0], version, data, 1000, ACK | PSH);
  });

  test(`IPv${version}: a UDP_GRO train of 44 segments becomes one super-packet`, () => {
    const data = bytes(44 * 1388, 7 + version);
    const { buf, out } = coalesce([{ packets: segments(data, 1388, { version }, false) }]);
    assert.equal(out.length, 1);
    checkSuper(buf, out[0], version, data, 1388, ACK);
  });
}

test('trains and single datagrams of one flow merge across slots, up to 64 KiB', () => {
  const data = bytes(100 * 1000, 3);
  const segs = segments(data, 1000, { version: 4 }, false);
  const dgs: Datagram[] = [];
  for (let i = 0; i < segs.length; i += 10) dgs.push({ packets: segs.slice(i, i + 10) });
  const { buf, out } = coalesce(dgs);
  // 64 KiB caps a super-packet: 65535 - 52 header bytes = 65 segments of 1000.
  assert.deepEqual(out.map((o) => o.gso), [1000, 1000]);
  let at = 0;
  for (const o of out) {
    const n = o.len - PREFIX.length - 52;
    checkSuper(buf, o, 4, data.subarray(at, at + n), 1000, ACK);
    at += n;
  }
  assert.equal(at, data.length);
});

test('a segment with a bad checksum is not merged; it and the rest still arrive in order', () => {
  const data = bytes(10 * 500, 5);
  const segs = segments(data, 500, { version: 4 }, false);
  segs[4][60] ^= 0xff; // corrupt payload: TCP checksum fails
  const before = native.offloadStats().groBadChecksum;
  const { buf, out } = coalesce(segs.map((p) => ({ packets: [p] })));
  assert.equal(native.offloadStats().groBadChecksum - before, 1);
  assert.deepEqual(out.map((o) => o.gso), [500, 0, 500]);
  checkSuper(buf, out[0], 4, data.subarray(0, 2000), 500, ACK);
  assert.deepEqual(buf.subarray(out[1].off + PREFIX.length, out[1].off + out[1].len), segs[4], 'the bad one, untouched');
  checkSuper(buf, out[2], 4, data.subarray(2500), 500, ACK);
});

test('interleaved flows each coalesce, in order of first arrival', () => {
  const a = segments(bytes(6 * 800, 1), 800, { version: 4, srcPort: 1111 }, false);
  const b = segments(bytes(6 * 800, 2), 800, { version: 4, srcPort: 2222 }, false);
  const dgs: Datagram[] = [];
  for (let i = 0; i < 6; i++) dgs.push({ packets: [a[i]] }, { packets: [b[i]] });
  const { buf, out } = coalesce(dgs);
  assert.equal(out.length, 2);
  checkSuper(buf, out[0], 4, bytes(6 * 800, 1), 800, ACK);
  checkSuper(buf, out[1], 4, bytes(6 * 800, 2), 800, ACK);
  assert.deepEqual(out.map((o) => o.slot), [0, 1]);
});

test('SYN, FIN and pure ACKs pass unchanged; a FIN closes the flow\'s super-packet', () => {
  const data = bytes(4 * 600, 9);
  const segs = segments(data, 600, { version: 4 }, false);
  const syn = tcpPacket({ version: 4, seq: 1, flags: SYN, payload: new Uint8Array(0) });
  const pureAck = tcpPacket({ version: 4, seq: 1000, flags: ACK, payload: new Uint8Array(0), srcPort: 3333 });
  const fin = tcpPacket({ version: 4, seq: 1000 + 1200, flags: ACK | FIN, payload: new Uint8Array(0) });
  const dgs = [syn, segs[0], segs[1], pureAck, fin, segs[2], segs[3]].map((p) => ({ packets: [p] }));
  const { buf, out } = coalesce(dgs);
  assert.deepEqual(out.map((o) => o.gso), [0, 600, 0, 0, 600]);
  const raw = (o: Out) => buf.subarray(o.off + PREFIX.length, o.off + o.len);
  assert.deepEqual(raw(out[0]), syn);
  checkSuper(buf, out[1], 4, data.subarray(0, 1200), 600, ACK);
  assert.deepEqual(raw(out[2]), pureAck);
  assert.deepEqual(raw(out[3]), fin);
  checkSuper(buf, out[4], 4, data.subarray(1200), 600, ACK);
});

test('nothing merges after a PSH or a short segment, nor across a gap, a new ACK, window or TTL', () => {
  const p = (seq: number, len: number, extra: Partial<TcpSpec> = {}) =>
    tcpPacket({ version: 4, seq, flags: ACK, payload: bytes(len, seq), ...extra });
  const cases: [string, Buffer[]][] = [
    ['PSH', [p(0, 100, { flags: ACK | PSH }), p(100, 100)]],
    ['short', [p(0, 100), p(100, 50), p(150, 100)]],
    ['gap', [p(0, 100), p(150, 100)]],
    ['ack', [p(0, 100), p(100, 100, { ack: 778 })]],
    ['window', [p(0, 100), p(100, 100, { window: 503 })]],
    ['ttl', [p(0, 100), p(100, 100, { ttl: 63 })]],
    ['options', [p(0, 100), p(100, 100, { options: new Uint8Array(0) })]],
    ['larger after smaller', [p(0, 100), p(100, 200)]],
  ];
  for (const [what, pkts] of cases) {
    const { out } = coalesce(pkts.map((x) => ({ packets: [x] })));
    const merged = what === 'short' ? 2 : 1; // 100+50 merge (a short one ends the super-packet)
    assert.equal(out.length, pkts.length - merged + 1, what);
  }
});

test('different overlay prefix or outer sender: no merge', () => {
  const segs = segments(bytes(2 * 700, 4), 700, { version: 4 }, false);
  const other = Buffer.from(PREFIX);
  other[6] = 2; // VNI 2
  assert.equal(coalesce([{ packets: [segs[0]] }, { packets: [segs[1]], prefix: other }]).out.length, 2);
  assert.equal(coalesce([{ packets: [segs[0]] }, { packets: [segs[1]], addr: 0x0a630003 }]).out.length, 2);
});

test('truncated datagrams (length -1) and non-IP payloads pass through', () => {
  const { out } = coalesce([{ packets: [Buffer.from('not an IP packet at all')] }]);
  assert.equal(out.length, 1);
  assert.equal(out[0].gso, 0);
  assert.equal(out[0].len, PREFIX.length + 23);
});

test('property: one flow cut at random, trained at random, corrupted at random — the good bytes arrive in order', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ len: fc.integer({ min: 1, max: 1460 }), psh: fc.boolean(), bad: fc.boolean(), train: fc.boolean() }),
      { minLength: 1, maxLength: 60 }),
    fc.constantFrom(4 as const, 6 as const),
    (specs, version) => {
      let seq = 5000;
      const pkts = specs.map((s, i) => {
        const payload = bytes(s.len, i + 1);
        const pkt = tcpPacket({ version, seq, flags: ACK | (s.psh ? PSH : 0), payload });
        seq += s.len;
        if (s.bad && i % 7 === 3) pkt[pkt.length - 1] ^= 0x5a;
        return { pkt, payload, bad: s.bad && i % 7 === 3, train: s.train };
      });
      // Trains: runs of equal-length packets (as UDP_GRO makes them) flagged `train`.
      const dgs: Datagram[] = [];
      for (const x of pkts) {
        const last = dgs[dgs.length - 1];
        if (x.train && last && last.packets.length < 40 && last.packets[0].length === x.pkt.length &&
            last.packets[last.packets.length - 1].length === x.pkt.length) last.packets.push(x.pkt);
        else dgs.push({ packets: [x.pkt] });
      }
      const { buf, out } = coalesce(dgs);
      // Super-packets carry the partial checksum; the payloads, in output order, are the input's.
      const got: Buffer[] = [];
      for (const o of out) {
        const ip = o.off + PREFIX.length, len = o.len - PREFIX.length;
        if (o.gso === 0) {
          // Passed through untouched (a corrupted one keeps its bad checksum).
          const t = ip + (version === 4 ? 20 : 40);
          got.push(Buffer.from(buf.subarray(t + ((buf[t + 12] >> 4) * 4), ip + len)));
        } else {
          const iphl = version === 4 ? 20 : 40;
          const t = ip + iphl;
          assert.equal(buf.readUInt16BE(t + 16), fold(pseudoHeaderSum(buf, ip, len - iphl, 6)));
          got.push(Buffer.from(buf.subarray(t + ((buf[t + 12] >> 4) * 4), o.off + o.len)));
        }
      }
      assert.deepEqual(Buffer.concat(got), Buffer.concat(pkts.map((x) => x.bad ? bytesOfBad(x.pkt, version) : Buffer.from(x.payload))));
    },
  ), { seed: 0x6e0, numRuns: 300 });
});

/** A corrupted packet passes through unmerged, with its corrupted payload. */
function bytesOfBad(pkt: Buffer, version: 4 | 6): Buffer {
  const t = version === 4 ? 20 : 40;
  return pkt.subarray(t + ((pkt[t + 12] >> 4) * 4));
}
