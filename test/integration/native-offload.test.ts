// Offloads of the addon on real fds (no root): super-packets cut into
// segments by writeBatchGso (into a file, which keeps what a plain TUN would
// get), the virtio header it writes for an IFF_VNET_HDR TUN, and UDP_SEGMENT
// sends received with UDP_GRO over loopback, then coalesced back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/binding.js';
import { ACK, CWR, PSH, bytes, checkSegment, tcpPacket } from '../unit/tcp-super-fixtures.js';

const LOOPBACK = 0x7f000001;
const PREFIX = Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]);

/** The bytes writeBatchGso writes for `pkt` with meta `mss` to a file. */
function writeToFile(pkt: Buffer, mss: number, vnet: 0 | 1): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gso-'));
  const path = join(dir, 'out');
  const fd = openSync(path, 'w');
  try {
    const buf = Buffer.concat([Buffer.alloc(64), pkt]);
    const n = native.writeBatchGso(fd, buf, Int32Array.of(64), Int32Array.of(pkt.length), Int32Array.of(mss), 1, vnet);
    assert.equal(n, 1);
  } finally {
    closeSync(fd);
  }
  const out = readFileSync(path);
  rmSync(dir, { recursive: true });
  return out;
}

/** Splits a byte stream of back-to-back IP packets by their own length fields. */
function packetsOf(stream: Buffer, version: 4 | 6): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0; at < stream.length;) {
    const len = version === 4 ? stream.readUInt16BE(at + 2) : 40 + stream.readUInt16BE(at + 4);
    out.push([at, len]);
    at += len;
  }
  return out;
}

for (const version of [4, 6] as const) {
  test(`IPv${version}: a super-packet is cut into MSS segments with correct headers and checksums`, () => {
    const payload = bytes(20_000, 11);
    const pkt = tcpPacket({ version, seq: 0xfffff000, flags: ACK | PSH | CWR, payload, ipId: 0xfffe });
    const stream = writeToFile(pkt, 1400, 0);
    const segs = packetsOf(stream, version).map(([at, len]) => checkSegment(stream, at, len, version));
    assert.equal(segs.length, Math.ceil(20_000 / 1400));
    segs.forEach((s, k) => {
      assert.equal(s.seq, (0xfffff000 + k * 1400) >>> 0, `seq of segment ${k} (wraps)`);
      if (version === 4) assert.equal(s.ipId, (0xfffe + k) & 0xffff, `IP id of segment ${k}`);
      const last = k === segs.length - 1;
      assert.equal(s.flags, ACK | (last ? PSH : 0) | (k === 0 ? CWR : 0), `flags of segment ${k}`);
    });
    assert.deepEqual(Buffer.concat(segs.map((s) => s.payload)), Buffer.from(payload));
  });
}

test('with a virtio header: one write, GSO fields set, checksum left partial', () => {
  const pkt = tcpPacket({ version: 4, seq: 1, flags: ACK, payload: bytes(5000, 2) });
  const out = writeToFile(pkt, 1448, 1);
  assert.equal(out.length, 10 + pkt.length);
  const hdr = { flags: out[0], gsoType: out[1], hdrLen: out.readUInt16LE(2), gsoSize: out.readUInt16LE(4),
    csumStart: out.readUInt16LE(6), csumOffset: out.readUInt16LE(8) };
  assert.deepEqual(hdr, { flags: 1, gsoType: 1, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 });
  assert.deepEqual(out.subarray(10, 10 + 36), pkt.subarray(0, 36), 'headers before the TCP checksum unchanged');
  assert.deepEqual(out.subarray(10 + 52), pkt.subarray(52), 'payload unchanged');
  const plain = writeToFile(pkt.subarray(0, 200 + 52), 0, 1);
  assert.deepEqual(plain.subarray(0, 10), Buffer.alloc(10), 'an ordinary packet gets a zero header');
});

test('a malformed super-packet is refused with -EINVAL, not written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gso-'));
  const fd = openSync(join(dir, 'out'), 'w');
  try {
    const buf = Buffer.alloc(200);
    buf[64] = 0x45; // IPv4, but UDP and lengths that do not add up
    const lengths = Int32Array.of(100);
    assert.equal(native.writeBatchGso(fd, buf, Int32Array.of(64), lengths, Int32Array.of(1000), 1, 0), 1);
    assert.ok(lengths[0] < 0, 'marked as rejected');
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true });
  }
});

/** Receives until `want` bytes of datagrams arrived (or 2 s), with UDP_GRO trains reported. */
async function receive(fd: number, want: number) {
  const slots = 64, slot = 65536 + 64;
  const buf = Buffer.alloc(slots * slot);
  const offsets = new Int32Array(slots).map((_, i) => i * slot + 64);
  const lengths = new Int32Array(slots), gso = new Int32Array(slots);
  const addrs = new Uint32Array(slots), ports = new Uint16Array(slots);
  const got: { data: Buffer; gso: number }[] = [];
  let bytesIn = 0;
  const deadline = Date.now() + 2000;
  while (bytesIn < want && Date.now() < deadline) {
    const n = native.recvBatch(fd, buf, offsets, lengths, 65536, addrs, ports, slots, gso);
    for (let i = 0; i < n; i++) {
      got.push({ data: Buffer.from(buf.subarray(offsets[i], offsets[i] + lengths[i])), gso: gso[i] });
      bytesIn += lengths[i];
    }
    if (n === 0) await new Promise((r) => setTimeout(r, 5));
  }
  return got;
}

for (const useGso of [1, 0] as const) {
  test(`UDP ${useGso ? 'GSO' : 'without GSO'}: a super-packet leaves as VXLAN-sized datagrams and coalesces back`, async () => {
    let a = -1, b = -1;
    try {
      a = native.udpOpen(LOOPBACK, 0, 8 << 20);
      b = native.udpOpen(LOOPBACK, 0, 8 << 20);
      native.udpSetGro(b, 1);
      assert.equal(native.udpGsoSupported(a), true);
      const payload = bytes(60_000, 21);
      const pkt = tcpPacket({ version: 4, seq: 7, flags: ACK | PSH, payload });
      const buf = Buffer.concat([Buffer.alloc(64 - PREFIX.length), PREFIX, pkt]);
      const before = native.offloadStats();
      const lengths = Int32Array.of(PREFIX.length + pkt.length);
      const n = native.sendBatchGso(a, buf, Int32Array.of(64 - PREFIX.length), lengths, Uint32Array.of(LOOPBACK),
        Uint16Array.of(native.udpLocalPort(b)), Int32Array.of(1400), 1, PREFIX.length, useGso);
      assert.equal(n, 1);
      assert.ok(lengths[0] > 0);
      const nseg = Math.ceil(60_000 / 1400);
      const segSize = PREFIX.length + 52 + 1400;
      const after = native.offloadStats();
      assert.equal(after.gsoSegments - before.gsoSegments, nseg);
      if (useGso) assert.equal(after.udpGsoSends - before.udpGsoSends, 1, '43 segments of 1460 B: one train under 64 KiB');
      const got = await receive(b, nseg * PREFIX.length + nseg * 52 + 60_000);
      // Every datagram (or datagram of a train) is one VXLAN-framed TCP segment.
      const datagrams: Buffer[] = [];
      for (const g of got) {
        const size = g.gso || g.data.length;
        for (let at = 0; at < g.data.length; at += size) datagrams.push(g.data.subarray(at, at + size));
      }
      assert.equal(datagrams.length, nseg);
      datagrams.forEach((d, k) => {
        assert.equal(d.length, k < nseg - 1 ? segSize : PREFIX.length + 52 + 60_000 - (nseg - 1) * 1400);
        assert.deepEqual(d.subarray(0, PREFIX.length), PREFIX);
        checkSegment(d, PREFIX.length, d.length - PREFIX.length, 4);
      });
      // And back: coalescing restores the super-packet.
      const slot = 65536 + 64;
      const rx = Buffer.alloc(got.length * slot);
      const offs = new Int32Array(got.length), lens = new Int32Array(got.length), gsos = new Int32Array(got.length);
      got.forEach((g, i) => { offs[i] = i * slot + 64; g.data.copy(rx, offs[i]); lens[i] = g.data.length; gsos[i] = g.gso; });
      const cap = got.length * 128;
      const oo = new Int32Array(cap), ol = new Int32Array(cap), og = new Int32Array(cap), os = new Int32Array(cap);
      const np = native.groCoalesce(rx, offs, lens, gsos, new Uint32Array(got.length), new Uint16Array(got.length),
        got.length, 65536, PREFIX.length, oo, ol, og, os);
      assert.equal(np, 1);
      assert.equal(og[0], 1400);
      assert.equal(ol[0], PREFIX.length + pkt.length);
      assert.deepEqual(rx.subarray(oo[0] + PREFIX.length + 52, oo[0] + ol[0]), Buffer.from(payload));
    } finally {
      if (a >= 0) native.closeFd(a);
      if (b >= 0) native.closeFd(b);
    }
  });
}

test('UDP GSO: consecutive equal-sized datagrams to one peer travel as a train, each arriving whole', async () => {
  let a = -1, b = -1;
  try {
    a = native.udpOpen(LOOPBACK, 0, 8 << 20);
    b = native.udpOpen(LOOPBACK, 0, 8 << 20);
    const sizes = [1000, 1000, 1000, 1000, 400, 1000, 1000, 10];
    const buf = Buffer.alloc(sizes.length * 2048);
    const offsets = new Int32Array(sizes.length).map((_, i) => i * 2048);
    sizes.forEach((s, i) => buf.fill(i + 1, offsets[i], offsets[i] + s));
    const port = native.udpLocalPort(b);
    const before = native.offloadStats().udpGsoSends;
    const n = native.sendBatchGso(a, buf, offsets, Int32Array.from(sizes), new Uint32Array(sizes.length).fill(LOOPBACK),
      new Uint16Array(sizes.length).fill(port), new Int32Array(sizes.length), sizes.length, 0, 1);
    assert.equal(n, sizes.length);
    assert.equal(native.offloadStats().udpGsoSends - before, 2, 'trains [1000×4, 400] and [1000×2, 10]');
    const got = await receive(b, sizes.reduce((x, y) => x + y, 0));
    assert.deepEqual(got.map((g) => [g.data.length, g.data[0]]), sizes.map((s, i) => [s, i + 1]));
  } finally {
    if (a >= 0) native.closeFd(a);
    if (b >= 0) native.closeFd(b);
  }
});
