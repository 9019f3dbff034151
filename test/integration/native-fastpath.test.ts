// The native fast path (native/fastpath.cc) on real fds, no root: an underlay port on a loopback
// UDP socket polled by a real native Poller, and a file standing in for the egress TUN (the
// packets a TUN write would deliver, back to back). Checks that installed flows are forwarded
// without calling JS (TTL - 1, header checksum updated, overlay header stripped), and that
// everything the fast path must not decide reaches JS as `pending`: unknown flows, another
// overlay header, TCP SYN/FIN, TTL 1, too big, expired or cleared entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FastPathKind, native, type Poller } from '../../src/native/binding.js';
import { ipv4HeaderChecksum } from '../../src/packet/checksum.js';
import { ACK, FIN, SYN, bytes, tcpPacket } from '../unit/tcp-super-fixtures.js';
import { udp4 } from '../unit/packet-fixtures.js';
import { sleep, until } from './support/native.js';

const LOOPBACK = 0x7f000001;
const PREFIX = Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]);
const SLOTS = 8, SLOT = 2048 + 64, MAX_LEN = 2048;

test('fast path: installed flows go out natively; everything else reaches JS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fp-'));
  const outPath = join(dir, 'tun');
  let a = -1, b = -1, out = -1;
  let poller: Poller | undefined;
  try {
    a = native.udpOpen(LOOPBACK, 0, 1 << 20);
    b = native.udpOpen(LOOPBACK, 0, 1 << 20);
    out = openSync(outPath, 'w');
    const portA = native.udpLocalPort(a), portB = native.udpLocalPort(b);

    // The underlay port's batch memory, as the forwarder's PacketBatch holds it.
    const buf = Buffer.alloc(SLOTS * SLOT);
    const offsets = new Int32Array(SLOTS).map((_, i) => i * SLOT + 64);
    const lengths = new Int32Array(SLOTS), gso = new Int32Array(SLOTS);
    const addrs = new Uint32Array(SLOTS), ports = new Uint16Array(SLOTS);
    const pending = new Int32Array(SLOTS + 1);
    native.fastPathAttach(b, FastPathKind.Udp, buf, offsets, lengths, gso, addrs, ports, SLOTS, MAX_LEN, pending, PREFIX.length, 0);

    // JS sees only what the fast path leaves: record the pending packets' IP payload, as the forwarder would forward them.
    const toJs: Buffer[] = [];
    poller = new native.Poller(b, (err) => {
      if (err) throw err;
      for (let k = 1; k <= pending[0]; k++) {
        const i = pending[k];
        toJs.push(Buffer.from(buf.subarray(offsets[i] + PREFIX.length, offsets[i] + lengths[i])));
      }
      pending[0] = 0;
      // Drain what the native poll did not read (as onUnderlayReadable does).
      for (;;) {
        const n = native.recvBatch(b, buf, offsets, lengths, MAX_LEN, addrs, ports, SLOTS);
        for (let i = 0; i < n; i++) toJs.push(Buffer.from(buf.subarray(offsets[i] + PREFIX.length, offsets[i] + lengths[i])));
        if (n < SLOTS) break;
      }
    });
    poller.start();

    const sendBuf = Buffer.alloc(4096);
    const send = (pkt: Buffer, prefix = PREFIX) => {
      prefix.copy(sendBuf, 0);
      pkt.copy(sendBuf, prefix.length);
      const n = native.sendBatch(a, sendBuf, Int32Array.of(0), Int32Array.of(prefix.length + pkt.length), Uint32Array.of(LOOPBACK),
        Uint16Array.of(portB), 1);
      assert.equal(n, 1);
    };
    const written = () => readFileSync(outPath);
    const install = (pkt: Buffer, ttlMs = 60_000, mtu = 1450) => {
      const m = Buffer.concat([PREFIX, pkt]);
      return native.fastPathInstall(m, PREFIX.length, pkt.length, 0, PREFIX.length, b, LOOPBACK, portA, out, 0, mtu, 0, 0, ttlMs);
    };

    const flow = (i: number, ttl = 64) => {
      const p = udp4('10.244.2.2', '10.244.1.2', 5000, 6000, Buffer.from(`datagram ${i}`));
      p[8] = ttl;
      p.writeUInt16BE(ipv4HeaderChecksum(p, 0), 10);
      return p;
    };

    // 1. Unknown flow: JS gets it.
    const before = native.fastPathStats();
    send(flow(0));
    await until(() => toJs.length === 1, 2000, 'the miss to reach JS');
    assert.equal(written().length, 0);

    // 2. Installed: forwarded natively, JS not called; TTL - 1 with a valid header checksum.
    assert.equal(install(flow(0)), true);
    for (let i = 1; i <= 5; i++) send(flow(i));
    await until(() => written().length > 0 && written().toString('latin1').includes('datagram 5'), 2000, 'native forwarding');
    const got = written();
    let at = 0, k = 1;
    while (at < got.length) {
      const len = got.readUInt16BE(at + 2);
      const expect = flow(k++, 63);
      assert.deepEqual(got.subarray(at, at + len), expect, 'the inner packet, TTL 63, checksum updated');
      at += len;
    }
    assert.equal(k, 6);
    assert.equal(toJs.length, 1, 'JS not called for the installed flow');
    assert.equal(native.fastPathStats().hits - before.hits, 5);

    // 3. Another overlay header (VNI 2), TTL 1, too big: JS.
    const vni2 = Buffer.from(PREFIX);
    vni2[6] = 2;
    send(flow(6), vni2);
    send(flow(7, 1));
    const big = udp4('10.244.2.2', '10.244.1.2', 5000, 6000, Buffer.alloc(1600 - 28));
    send(big);
    await until(() => toJs.length === 4, 2000, 'three packets to JS');

    // 4. TCP: SYN and FIN go to JS, data in between natively. (Once a packet of a flow goes to JS, the
    //    rest of that flow's packets in the same batch follow it, so the flow stays in order.)
    const tcp = (flags: number, seq: number) => tcpPacket({ version: 4, seq, flags, payload: flags & (SYN | FIN) ? new Uint8Array(0) : bytes(100, seq) });
    assert.equal(install(tcp(SYN, 1)), true);
    send(tcp(SYN, 1));
    await until(() => toJs.length === 5, 2000, 'the SYN to JS');
    const w0 = written().length;
    send(tcp(ACK, 2));
    await until(() => written().length > w0, 2000, 'TCP data natively');
    send(tcp(ACK | FIN, 102));
    await until(() => toJs.length === 6, 2000, 'the FIN to JS');
    assert.equal(written().length - w0, tcp(ACK, 2).length, 'only the data segment went out natively');

    // 5. Expired and cleared entries: JS again.
    assert.equal(install(flow(0), 50), true);
    await sleep(120);
    send(flow(8));
    await until(() => toJs.length === 7, 2000, 'the expired flow to JS');
    assert.equal(install(flow(0)), true);
    native.fastPathClear();
    send(flow(9));
    await until(() => toJs.length === 8, 2000, 'the cleared flow to JS');

    // 6. Forgotten port: the Poller calls JS for everything.
    assert.equal(install(flow(0)), true);
    native.fastPathForget(b);
    send(flow(10));
    await until(() => toJs.length === 9, 2000, 'JS after fastPathForget');
  } finally {
    poller?.close();
    if (b >= 0) native.fastPathForget(b);
    if (a >= 0) native.closeFd(a);
    if (b >= 0) native.closeFd(b);
    if (out >= 0) closeSync(out);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fast path: a port whose fd number was closed and reused is not used', async () => {
  let b = native.udpOpen(LOOPBACK, 0, 1 << 20);
  const buf = Buffer.alloc(SLOTS * SLOT);
  const offsets = new Int32Array(SLOTS).map((_, i) => i * SLOT + 64);
  native.fastPathAttach(b, FastPathKind.Udp, buf, offsets, new Int32Array(SLOTS), new Int32Array(SLOTS), new Uint32Array(SLOTS),
    new Uint16Array(SLOTS), SLOTS, MAX_LEN, new Int32Array(SLOTS + 1), 0, 0);
  native.closeFd(b); // without fastPathForget: the port is stale
  const c = native.udpOpen(LOOPBACK, 0, 1 << 20); // likely the same number
  let called = 0;
  const poller = new native.Poller(c, () => {
    called++;
    native.recvBatch(c, buf, offsets, new Int32Array(SLOTS), MAX_LEN, new Uint32Array(SLOTS), new Uint16Array(SLOTS), SLOTS);
  });
  try {
    poller.start();
    const s = native.udpOpen(LOOPBACK, 0, 0);
    native.sendBatch(s, Buffer.from('x'), Int32Array.of(0), Int32Array.of(1), Uint32Array.of(LOOPBACK), Uint16Array.of(native.udpLocalPort(c)), 1);
    await until(() => called > 0, 2000, 'JS to be called for the new socket');
    native.closeFd(s);
  } finally {
    poller.close();
    native.fastPathForget(c);
    native.closeFd(c);
    b = -1;
  }
});
