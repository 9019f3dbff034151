// Native checksums (native/checksum.cc) against the TypeScript reference
// (src/packet/checksum.ts): differential property tests over every length
// 0..2000 and every start alignment, plus known-answer vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as ref from '../../src/packet/checksum.js';
import { native } from '../../src/native/binding.js';
import { bytes } from './tcp-super-fixtures.js';

const SEED = 0x5eed;
const MAX_LEN = 2000;

/** A view of `data` starting `align` bytes into a fresh ArrayBuffer, so byteOffset (and address) alignment varies. */
function placed(data: Uint8Array, align: number): Uint8Array {
  const backing = new Uint8Array(align + data.length + 8);
  const view = backing.subarray(align, align + data.length);
  view.set(data);
  return view;
}

/** One's-complement equality: 0x0000 and 0xffff both represent zero. */
function onesEqual(a: number, b: number): boolean {
  return a === b || (a === 0 && b === 0xffff) || (a === 0xffff && b === 0);
}

test('known answers', () => {
  // RFC 1071 §3 example.
  const rfc = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(native.checksum(rfc, 0, 8, 0), 0xddf2);
  assert.equal(native.checksum(rfc, 0, 8), 0xddf2);
  assert.equal(ref.finish(native.checksum(rfc, 0, 8, 0)), 0x220d);
  // A real IPv4 header (192.168.0.1 → 192.168.0.199, UDP, total length 115) with checksum 0xb861.
  const ip = Buffer.from('450000730000400040 11b861c0a80001c0a800c7'.replace(/ /g, ''), 'hex');
  assert.equal(native.ipv4HeaderChecksum(ip, 0), 0xb861);
  assert.equal(native.checksum(ip, 0, 20, 0), 0xffff, 'a header with its checksum sums to 0xffff');
  // The same header behind 3 bytes of padding: offset and alignment do not matter.
  const padded = Buffer.concat([Buffer.from([9, 9, 9]), ip]);
  assert.equal(native.ipv4HeaderChecksum(padded, 3), 0xb861);
  // Edge sums: nothing, all zeros, all ones, a lone odd byte (padded low).
  assert.equal(native.checksum(Buffer.alloc(0), 0, 0, 0), 0);
  assert.equal(native.checksum(Buffer.alloc(64), 0, 64, 0), 0);
  assert.equal(native.checksum(Buffer.alloc(64, 0xff), 0, 64, 0), 0xffff);
  assert.equal(native.checksum(Buffer.from([0xab]), 0, 1, 0), 0xab00);
  assert.equal(native.incrementalUpdate(0xb861, 0x4011, 0x3f11), ref.incrementalUpdate(0xb861, 0x4011, 0x3f11));
});

test('checksum equals sum16 for every length 0..2000 at every alignment 0..7', () => {
  for (let len = 0; len <= MAX_LEN; len++) {
    const data = bytes(len + 8, len + 1);
    for (let align = 0; align < 8; align++) {
      const buf = placed(data, align);
      const off = len % 5; // also vary the offset inside the view
      const n = Math.min(len, buf.length - off);
      const initial = (len * 2654435761) >>> 0;
      assert.equal(native.checksum(buf, off, n, initial), ref.sum16(buf, off, n, initial), `len ${n} align ${align} off ${off}`);
    }
  }
});

test('checksum equals sum16 on random data, offsets and initial values', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: MAX_LEN, size: 'max' }),
      fc.nat(15),
      fc.nat(16),
      fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff })),
      (data, align, rawOff, initial) => {
        const buf = placed(data, align);
        const off = Math.min(rawOff, buf.length);
        const len = buf.length - off;
        assert.equal(native.checksum(buf, off, len, initial), ref.sum16(buf, off, len, initial));
      },
    ),
    { seed: SEED, numRuns: 3000 },
  );
});

test('ipv4HeaderChecksum equals the reference for IHL 5..15 and validates', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 60, maxLength: 60 }), fc.integer({ min: 5, max: 15 }), fc.nat(7), (raw, ihl, align) => {
      raw[0] = 0x40 | ihl;
      const buf = placed(raw, align);
      const csum = native.ipv4HeaderChecksum(buf, 0);
      assert.equal(csum, ref.ipv4HeaderChecksum(buf, 0));
      // Writing it makes the header verify (sum 0xffff), whatever the old field held.
      buf[10] = csum >> 8;
      buf[11] = csum & 0xff;
      assert.equal(native.checksum(buf, 0, ihl * 4, 0), 0xffff);
    }),
    { seed: SEED, numRuns: 2000 },
  );
  const hdr = Buffer.alloc(60);
  hdr[0] = 0x44;
  assert.throws(() => native.ipv4HeaderChecksum(hdr, 0), { name: 'RangeError', message: /IHL.*16 bytes/ });
  hdr[0] = 0x4f;
  assert.throws(() => native.ipv4HeaderChecksum(hdr, 1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
});

/** An IPv4 or IPv6 header (random addresses) followed by a random L4 segment; returns the packet and the L4 offset. */
const packetArb = fc.record({
  v6: fc.boolean(),
  ihl: fc.integer({ min: 5, max: 15 }),
  header: fc.uint8Array({ minLength: 60, maxLength: 60 }),
  segment: fc.uint8Array({ minLength: 8, maxLength: 1600, size: 'max' }),
  kind: fc.constantFrom({ proto: 17, csumOff: 6 }, { proto: 6, csumOff: 16 }, { proto: 58, csumOff: 2 }, { proto: 1, csumOff: 2 }),
  align: fc.nat(7),
});

test('l4Checksum equals the reference for IPv4 and IPv6 pseudo-headers', () => {
  fc.assert(
    fc.property(packetArb, ({ v6, ihl, header, segment, kind, align }) => {
      const hlen = v6 ? 40 : ihl * 4;
      const seg = segment.length >= kind.csumOff + 2 ? segment : new Uint8Array(kind.csumOff + 2);
      const pkt = new Uint8Array(hlen + seg.length);
      pkt.set(header.subarray(0, hlen));
      pkt[0] = v6 ? 0x60 | (header[0] & 0x0f) : 0x40 | ihl;
      pkt.set(seg, hlen);
      const buf = placed(pkt, align);
      const got = native.l4Checksum(buf, 0, hlen, seg.length, kind.proto, kind.csumOff);
      assert.equal(got, ref.l4Checksum(buf, 0, hlen, seg.length, kind.proto, kind.csumOff));
      // Stored in its field, the segment verifies against the pseudo-header.
      buf[hlen + kind.csumOff] = got >> 8;
      buf[hlen + kind.csumOff + 1] = got & 0xff;
      const total = native.checksum(buf, hlen, seg.length, ref.pseudoHeaderSum(buf, 0, seg.length, kind.proto));
      assert.equal(total, 0xffff);
    }),
    { seed: SEED, numRuns: 2000 },
  );
  const short = Buffer.alloc(30);
  short[0] = 0x60;
  assert.throws(() => native.l4Checksum(short, 0, 20, 8, 17, 6), { name: 'RangeError', message: /IPv6 header/ });
  short[0] = 0x45;
  assert.throws(() => native.l4Checksum(short, 0, 20, 8, 17, 8), { name: 'RangeError', message: /csumOff/ });
  assert.throws(() => native.l4Checksum(short, 0, 20, 20, 17, 6), { name: 'RangeError', message: /segment/ });
});

test('incrementalUpdate matches the reference and a full recompute', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 2, maxLength: 200 }),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffff }),
      (raw, pick, newWord) => {
        const data = raw.length % 2 === 0 ? raw : raw.subarray(1);
        const csum = ref.finish(native.checksum(data, 0, data.length, 0));
        const at = (pick % (data.length / 2)) * 2;
        const oldWord = (data[at] << 8) | data[at + 1];
        const updated = native.incrementalUpdate(csum, oldWord, newWord);
        assert.equal(updated, ref.incrementalUpdate(csum, oldWord, newWord));
        data[at] = newWord >> 8;
        data[at + 1] = newWord & 0xff;
        const full = ref.finish(ref.sum16(data, 0, data.length));
        // Eqn. 3 can yield +0 where a recompute of all-zero data yields -0.
        assert.ok(onesEqual(updated, full), `updated ${updated.toString(16)} vs full ${full.toString(16)}`);
      },
    ),
    { seed: SEED, numRuns: 5000 },
  );
});

test('bad arguments throw typed errors naming the argument', () => {
  const buf = Buffer.alloc(16);
  assert.throws(() => native.checksum(buf, 10, 7, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /checksum: off\.\.off\+len \[10, 17\)/ });
  assert.throws(() => native.checksum(buf, -1, 2, 0), { name: 'RangeError', message: /checksum: off must be an integer/ });
  assert.throws(() => native.checksum(buf, 0, 2, -1), { name: 'RangeError', message: /initial/ });
  assert.throws(() => native.checksum(new Uint16Array(8) as unknown as Uint8Array, 0, 2, 0), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /buf must be a Uint8Array/ });
  assert.throws(() => native.checksum(buf, '1' as unknown as number, 2, 0), { name: 'TypeError', message: /off must be a number/ });
  assert.throws(() => native.incrementalUpdate(0x10000, 0, 0), { name: 'RangeError', message: /csum/ });
});
