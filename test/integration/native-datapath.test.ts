// The native datapath threads (native/datapath.cc) on real fds, no root: a main underlay socket and
// a second one in its SO_REUSEPORT group on loopback, the second polled by datapath thread 1, with
// BPF steering by inner flow; a file stands in for the egress TUN. Checks that a miss on thread 1
// reaches JS through its ring (onMisses + datapathDrain) with where it came from, that an installed
// flow is forwarded by thread 1 without JS, that counters sum per thread, per fd and per peer, that
// a full ring drops and counts, and that forget and stop are clean while traffic flows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FastPathKind, UdpOpenFlags, native } from '../../src/native/binding.js';
import { FastPath } from '../../src/dataplane/fast-path.js';
import { PacketBatch } from '../../src/dataplane/packet-batch.js';
import type { Endpoint } from '../../src/dataplane/endpoint.js';
import { ipv4HeaderChecksum } from '../../src/packet/checksum.js';
import { udp4 } from '../unit/packet-fixtures.js';
import { sleep, threadOf, until } from './support/native.js';

const LOOPBACK = 0x7f000001;

/** Forgets (so no datapath thread holds them) and closes the fds a test opened; -1s are skipped. */
function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    if (fd < 0) continue;
    native.fastPathForget(fd);
    native.closeFd(fd);
  }
}
const PREFIX = Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]);
const SLOTS = 8, SLOT = 2048 + 64, MAX_LEN = 2048;

test('datapath thread: misses reach JS through the ring, installed flows go out natively on the thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-dp-'));
  let main = -1, worker = -1, sender = -1, out = -1;
  let started = false;
  try {
    main = native.udpOpen(LOOPBACK, 0, 1 << 20, UdpOpenFlags.ReusePort);
    const port = native.udpLocalPort(main);
    worker = native.udpOpen(LOOPBACK, port, 1 << 20, UdpOpenFlags.ReusePort);
    sender = native.udpOpen(LOOPBACK, 0, 1 << 20);
    const senderPort = native.udpLocalPort(sender);
    out = openSync(join(dir, 'tun'), 'w');

    // A flow the steering program puts on socket 1 (thread 1).
    let sport = 5000;
    while (threadOf('10.244.2.2', '10.244.1.2', sport, 6000) !== 1) sport++;
    const flow = (i: number, size = 0) => {
      const p = udp4('10.244.2.2', '10.244.1.2', sport, 6000, Buffer.concat([Buffer.from(`datagram ${i} `), Buffer.alloc(size)]));
      p.writeUInt16BE(ipv4HeaderChecksum(p, 0), 10);
      return p;
    };
    const sendBuf = Buffer.alloc(4096);
    const send = (pkt: Buffer) => {
      PREFIX.copy(sendBuf, 0);
      pkt.copy(sendBuf, PREFIX.length);
      assert.equal(native.sendBatch(sender, sendBuf, Int32Array.of(0), Int32Array.of(PREFIX.length + pkt.length),
        Uint32Array.of(LOOPBACK), Uint16Array.of(port), 1), 1);
    };

    // JS drains the threads' misses into its own batch, as Forwarder.onThreadMisses does.
    const buf = Buffer.alloc(SLOTS * SLOT);
    const offsets = new Int32Array(SLOTS).map((_, i) => i * SLOT + 64);
    const lengths = new Int32Array(SLOTS), gso = new Int32Array(SLOTS), addrs = new Uint32Array(SLOTS);
    const ports = new Uint16Array(SLOTS), fds = new Int32Array(SLOTS);
    const toJs: { pkt: Buffer; fd: number; addr: number; port: number }[] = [];
    let draining = true;
    const drain = () => {
      for (;;) {
        const n = native.datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, SLOTS, MAX_LEN);
        for (let i = 0; i < n; i++) {
          toJs.push({ pkt: Buffer.from(buf.subarray(offsets[i] + PREFIX.length, offsets[i] + lengths[i])), fd: fds[i], addr: addrs[i], port: ports[i] });
        }
        if (n < SLOTS) return;
      }
    };
    assert.equal(native.datapathStart(2, () => { if (draining) drain(); }, SLOTS, MAX_LEN, PREFIX.length, 0, 1 << 16, 0, 0), 0);
    started = true;
    assert.throws(() => native.datapathStart(2, () => {}, SLOTS, MAX_LEN, PREFIX.length, 0, 1 << 16, 0, 0), { code: 'ERR_DATAPATH_RUNNING' });
    native.datapathAttach(1, worker, FastPathKind.Udp, main);
    native.udpSetSteering(main, PREFIX.length, 2);

    // 1. A miss on thread 1: to JS, keyed by the main socket, with its sender.
    send(flow(0));
    await until(() => toJs.length === 1, 2000, 'the miss to reach JS');
    assert.deepEqual(toJs[0], { pkt: flow(0), fd: main, addr: LOOPBACK, port: senderPort });
    assert.ok(native.datapathThreadStats()[1].toJs >= 1);

    // 2. Installed (keyed by the main socket): thread 1 forwards natively, TTL - 1, JS not called.
    const m = Buffer.concat([PREFIX, flow(0)]);
    assert.equal(native.fastPathInstall(m, PREFIX.length, m.length - PREFIX.length, 0, PREFIX.length, main, LOOPBACK, senderPort,
      out, 0, 1450, 0, 0, 60_000), true);
    const before = native.datapathThreadStats()[1];
    for (let i = 1; i <= 5; i++) send(flow(i));
    const written = () => readFileSync(join(dir, 'tun'));
    await until(() => written().toString('latin1').includes('datagram 5'), 2000, 'native forwarding on thread 1');
    assert.equal(toJs.length, 1, 'JS not called for the installed flow');
    const got = written();
    assert.equal(got.length, 5 * flow(1).length);
    assert.equal(got[8], 63, 'TTL - 1');
    const after = native.datapathThreadStats()[1];
    assert.equal(after.hits - before.hits, 5);
    assert.equal(after.rxPackets - before.rxPackets, 5);
    assert.ok(native.fastPathStats().hits >= 5, 'process totals include the thread');
    assert.ok(native.fastPathFdStats(main).rxPackets >= 6, 'the main socket counts its group');
    const peer = native.fastPathPeerStats().find((p) => p.addr === LOOPBACK && p.port === senderPort);
    assert.ok(peer, 'per-peer counters');
    assert.equal(peer.rxPackets, 5);
    assert.equal(peer.rxBytes, 5 * flow(1).length);

    // 3. A policy change (clear) reaches the thread: the next packet goes to JS again.
    native.fastPathClear();
    send(flow(6));
    await until(() => toJs.length === 2, 2000, 'the cleared flow to JS');

    // 4. JS not draining: the ring (64 KiB) fills, misses are dropped and counted; then all drain.
    draining = false;
    const big = (i: number) => flow(100 + i, 1200);
    for (let i = 0; i < 120; i++) send(big(i));
    await until(() => native.datapathThreadStats()[1].ringDrops > 0, 2000, 'ring drops');
    await sleep(50);
    const queued = toJs.length;
    const dropped = new Float64Array(1);
    native.datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, 0, MAX_LEN, dropped);
    drain();
    const drained = toJs.length - queued;
    assert.ok(drained > 10 && drained < 120, `a bounded ring: ${drained} drained`);
    assert.equal(drained + native.datapathThreadStats()[1].ringDrops, 120, 'every miss either queued or counted');
    assert.equal(dropped[0], native.datapathThreadStats()[1].ringDrops, 'the drain reports the drops once');
    native.datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, 0, MAX_LEN, dropped);
    assert.equal(dropped[0], 0, '... and only once');
    draining = true;

    // 5. Forget while packets flow: no use of the fd afterwards; stop joins the thread.
    for (let i = 0; i < 20; i++) send(flow(200 + i));
    native.fastPathForget(worker);
    native.closeFd(worker);
    worker = -1;
    send(flow(300)); // now only the main socket is left in the group
    native.datapathStop();
    started = false;
    native.datapathStop(); // idempotent
    assert.equal(native.datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, SLOTS, MAX_LEN), 0, 'no threads, nothing to drain');
  } finally {
    if (started) native.datapathStop();
    closeFds([worker, main, sender]);
    if (out >= 0) closeSync(out);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('datapathStart with one thread starts nothing; bad arguments are typed', () => {
  assert.equal(native.datapathStart(1, () => {}, 8, 2048, 0, 0, 1 << 16, 0, 0), 0);
  assert.deepEqual(native.datapathThreadStats().length, 1);
  native.datapathStop();
  assert.throws(() => native.datapathStart(0, () => {}, 8, 2048, 0, 0, 1 << 16, 0, 0), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => native.datapathStart(2, 1 as unknown as () => void, 8, 2048, 0, 0, 1 << 16, 0, 0), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => native.datapathStart(2, () => {}, 8, 2048, 0, 0, 1 << 16, 10, 300),
    { code: 'ERR_OUT_OF_RANGE', message: 'datapathStart: busyPollUs 300 cannot be combined with realtime 10' });
  assert.deepEqual(native.datapathThreadStats().length, 1, 'nothing started');
  assert.throws(() => native.datapathAttach(1, 0, FastPathKind.Udp, 0), { code: 'ERR_OUT_OF_RANGE' });
});

// A ring of 64 KiB whose tail ends 8 bytes before its end: the next record starts with a padding
// record there, whose 24-byte header must not be written (or read) past the ring's memory. In a
// child process: heap corruption shows as an abort when the thread's memory is freed on stop.
const RING_WRAP_CHILD = `
const { native, FastPathKind } = await import(process.argv[1]);
const LO = 0x7f000001, SLOTS = 4, MAX = 65536, SLOT = MAX + 64;
const main = native.udpOpen(LO, 0, 4 << 20), worker = native.udpOpen(LO, 0, 4 << 20), sender = native.udpOpen(LO, 0, 4 << 20);
const wport = native.udpLocalPort(worker);
const buf = Buffer.alloc(SLOTS * SLOT), offsets = new Int32Array(SLOTS).map((_, i) => i * SLOT + 64);
const lengths = new Int32Array(SLOTS), gso = new Int32Array(SLOTS), addrs = new Uint32Array(SLOTS);
const ports = new Uint16Array(SLOTS), fds = new Int32Array(SLOTS);
const got = [];
const drain = () => {
  for (;;) {
    const n = native.datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, SLOTS, MAX);
    for (let i = 0; i < n; i++) got.push(lengths[i]);
    if (n < SLOTS) return;
  }
};
native.datapathStart(2, () => {}, SLOTS, MAX, 0, 0, 1 << 16, 0, 0);
native.datapathAttach(1, worker, FastPathKind.Udp, main);
const data = Buffer.alloc(MAX, 0x77);
const send = (len) => native.sendBatch(sender, data, Int32Array.of(0), Int32Array.of(len), Uint32Array.of(LO), Uint16Array.of(wport), 1);
const until = async (n) => { for (let i = 0; i < 400 && native.datapathThreadStats()[1].toJs < n; i++) await new Promise((r) => setTimeout(r, 5)); };
send(32736); send(32744); // records of 32760 + 32768 bytes: the tail is 8 bytes before the end
await until(2); drain();
send(100); send(200); // a padding record of 8 bytes, then the records from offset 0
await until(4); drain();
const ringDrops = native.datapathThreadStats()[1].ringDrops;
native.datapathStop();
for (const fd of [worker, main, sender]) { native.fastPathForget(fd); native.closeFd(fd); }
console.log(JSON.stringify({ got, ringDrops }));
`;

test('datapath ring: a padding record in the last 8 bytes stays inside the ring (no heap corruption)', () => {
  const binding = new URL('../../src/native/binding.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', RING_WRAP_CHILD, binding], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { got: [32736, 32744, 100, 200], ringDrops: 0 });
});

/**
 * Datapath threads started with `onMisses` and `prefixLen`; thread 1 polls a loopback socket of the
 * SO_REUSEPORT group keyed by `main`, and send() puts one 100-byte datagram on it. Threads stopped
 * and sockets closed after `run`.
 */
async function withThreadSocket(onMisses: () => void, prefixLen: number,
  run: (t: { main: number; send: () => void }) => Promise<void>): Promise<void> {
  let main = -1, worker = -1, sender = -1, started = false;
  try {
    main = native.udpOpen(LOOPBACK, 0, 1 << 20);
    worker = native.udpOpen(LOOPBACK, 0, 1 << 20);
    sender = native.udpOpen(LOOPBACK, 0, 1 << 20);
    const wport = native.udpLocalPort(worker);
    native.datapathStart(2, onMisses, SLOTS, MAX_LEN, prefixLen, 0, 1 << 16, 0, 0);
    started = true;
    native.datapathAttach(1, worker, FastPathKind.Udp, main);
    const data = Buffer.alloc(100, 0x55);
    await run({
      main,
      send: () => assert.equal(native.sendBatch(sender, data, Int32Array.of(0), Int32Array.of(data.length),
        Uint32Array.of(LOOPBACK), Uint16Array.of(wport), 1), 1),
    });
  } finally {
    if (started) native.datapathStop();
    closeFds([worker, main, sender]);
  }
}

test('fastPathForget(keyFd) drops the misses of fd still queued in the rings (its number may be reused)', () =>
  withThreadSocket(() => {}, PREFIX.length, async ({ main, send }) => { // JS does not drain on its own
    const buf = Buffer.alloc(SLOTS * SLOT);
    const offsets = new Int32Array(SLOTS).map((_, i) => i * SLOT + 64);
    const lengths = new Int32Array(SLOTS), gso = new Int32Array(SLOTS), addrs = new Uint32Array(SLOTS);
    const ports = new Uint16Array(SLOTS), fds = new Int32Array(SLOTS);
    const drain = () => native.datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, SLOTS, MAX_LEN);
    send();
    let n = 0;
    await until(() => (n = drain()) > 0, 2000, 'the first miss'); // JS drains queued misses
    assert.equal(n, 1);
    assert.equal(fds[0], main);
    send();
    send();
    await until(() => native.datapathThreadStats()[1].toJs === 3, 2000, 'two more misses');
    await sleep(20); // toJs is counted just before the push
    native.fastPathForget(main); // the socket closes next: its fd number is free for another
    assert.equal(drain(), 0, 'the queued misses of the forgotten fd are gone');
  }));

test('FastPath.close without threads of its own leaves the running datapath threads alone', () => {
  let started = false, udp = -1;
  try {
    native.datapathStart(2, () => {}, SLOTS, MAX_LEN, 0, 0, 1 << 16, 0, 0);
    started = true;
    udp = native.udpOpen(LOOPBACK, 0, 1 << 20);
    const fp = new FastPath({ ttlMs: 1000 }, udp, new PacketBatch(SLOTS, SLOT), null, new PacketBatch(SLOTS, SLOT), 0, false);
    assert.equal(fp.threads, 1);
    fp.close();
    assert.equal(native.datapathThreadStats().length, 2, 'thread 1 still runs');
  } finally {
    if (started) native.datapathStop();
    if (udp >= 0) {
      native.fastPathForget(udp);
      native.closeFd(udp);
    }
  }
});

test('a wake-up queued before datapathStop never calls that onMisses later (it would drain the next threads)', async () => {
  let oldCalls = 0, newCalls = 0;
  await withThreadSocket(() => { oldCalls++; }, 0, async ({ send }) => {
    send();
    // Without yielding to the event loop: the thread pushes the miss and queues a wake-up of JS.
    const end = Date.now() + 2000;
    while (native.datapathThreadStats()[1].wakeups < 1) assert.ok(Date.now() < end, 'the thread wakes JS');
    native.datapathStop(); // joins the thread: the wake-up is queued by now
    native.datapathStart(2, () => { newCalls++; }, SLOTS, MAX_LEN, 0, 0, 1 << 16, 0, 0);
    await sleep(50);
    assert.equal(oldCalls, 0, 'the stopped threads\' onMisses is not called');
    assert.equal(newCalls, 0);
  });
});

test('FastPath.attach: when attaching a later queue fails, the queues attached before still map to the endpoint', () => {
  const fds: number[] = [];
  let fp: FastPath | undefined;
  try {
    const udp = native.udpOpen(LOOPBACK, 0, 1 << 20, UdpOpenFlags.ReusePort);
    fds.push(udp);
    const port = native.udpLocalPort(udp);
    fp = new FastPath({ ttlMs: 1000 }, udp, new PacketBatch(SLOTS, SLOT), null, new PacketBatch(SLOTS, SLOT), 0, false,
      { threads: 2, bindAddr: LOOPBACK, port, bufBytes: 1 << 20, gro: false, realtime: 0, busyPollUs: 0, onMisses: () => {} });
    // Sockets stand in for an endpoint's TUN queues; the second "queue" is not an fd at all.
    const q0 = native.udpOpen(LOOPBACK, 0, 1 << 20), q1 = native.udpOpen(LOOPBACK, 0, 1 << 20);
    fds.push(q0, q1);
    const ep = { fd: q0, vnet: false, fastPath: false, queueFds: [q1, 1_000_000] } as unknown as Endpoint;
    assert.throws(() => fp!.attach(ep));
    assert.equal(fp.endpointOf(q0), ep, 'misses from queue 1 (attached) still find their endpoint');
  } finally {
    fp?.close();
    closeFds(fds);
  }
});
