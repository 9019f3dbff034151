// recvBatch/sendBatch/Poller on real loopback UDP sockets (no root needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { native, type Poller } from '../../src/native/binding.js';
import { until } from './support/native.js';

const run = promisify(execFile);
const LOOPBACK = 0x7f000001;
const COUNT = 64;
const SLOT = 2048;
const BUF_BYTES = 1 << 20;

/** Preallocated batch arrays, as the daemon uses them. */
function batch(slots: number, slot = SLOT) {
  const offsets = new Int32Array(slots);
  for (let i = 0; i < slots; i++) offsets[i] = i * slot;
  return {
    buf: Buffer.alloc(slots * slot),
    offsets,
    lengths: new Int32Array(slots),
    addrs: new Uint32Array(slots),
    ports: new Uint16Array(slots),
  };
}

/** Datagram i: size 0 for i = 0, else 2..1400 bytes; bytes encode i so payloads are distinct. */
function payloadSize(i: number): number {
  return i === 0 ? 0 : 2 + ((i * 211) % 1399);
}
function fillPayload(buf: Buffer, off: number, i: number): void {
  const len = payloadSize(i);
  for (let j = 0; j < len; j++) buf[off + j] = j < 2 ? (j === 0 ? i : 0xa5) : (i * 31 + j) & 0xff;
}

test('64 datagrams of varied sizes: sendBatch → Poller → recvBatch', async () => {
  let a = -1, b = -1;
  let poller: Poller | undefined;
  try {
    a = native.udpOpen(LOOPBACK, 0, BUF_BYTES);
    b = native.udpOpen(LOOPBACK, 0, BUF_BYTES);
    const portA = native.udpLocalPort(a);
    const portB = native.udpLocalPort(b);
    assert.ok(portA > 0 && portB > 0 && portA !== portB);

    const rx = batch(16); // smaller than COUNT: several recvBatch calls per wake-up
    assert.equal(native.recvBatch(b, rx.buf, rx.offsets, rx.lengths, SLOT, rx.addrs, rx.ports, 16), 0, 'empty socket');

    const got = new Map<number, Buffer>();
    const errors: unknown[] = [];
    let wakeups = 0;
    poller = new native.Poller(b, (err) => {
      wakeups++;
      try {
        if (err) throw err;
        for (let round = 0; round < 32; round++) {
          const n = native.recvBatch(b, rx.buf, rx.offsets, rx.lengths, SLOT, rx.addrs, rx.ports, 16);
          if (n === 0) break;
          for (let i = 0; i < n; i++) {
            assert.equal(rx.addrs[i], LOOPBACK);
            assert.equal(rx.ports[i], portA);
            assert.ok(rx.lengths[i] >= 0, 'not truncated');
            const len = rx.lengths[i];
            const id = len === 0 ? 0 : rx.buf[rx.offsets[i]];
            assert.ok(!got.has(id), `datagram ${id} received twice`);
            got.set(id, Buffer.from(rx.buf.subarray(rx.offsets[i], rx.offsets[i] + len)));
          }
        }
      } catch (e) {
        errors.push(e);
      }
    });
    poller.start();
    poller.start(); // idempotent

    const tx = batch(COUNT);
    for (let i = 0; i < COUNT; i++) {
      fillPayload(tx.buf, tx.offsets[i], i);
      tx.lengths[i] = payloadSize(i);
      tx.addrs[i] = LOOPBACK;
      tx.ports[i] = portB;
    }
    assert.equal(native.sendBatch(a, tx.buf, tx.offsets, tx.lengths, tx.addrs, tx.ports, COUNT), COUNT);

    await until(() => got.size === COUNT || errors.length > 0, 5000, `${COUNT} datagrams`);
    assert.deepEqual(errors, []);
    assert.ok(wakeups >= 1);
    for (let i = 0; i < COUNT; i++) {
      const want = tx.buf.subarray(tx.offsets[i], tx.offsets[i] + payloadSize(i));
      assert.ok(got.get(i)?.equals(want), `payload ${i} (${payloadSize(i)} bytes) matches`);
    }
  } finally {
    poller?.close();
    poller?.close(); // idempotent
    if (a >= 0) native.closeFd(a);
    if (b >= 0) native.closeFd(b);
  }
});

test('truncated datagrams are reported as length -1; rejected sends are marked -errno', () => {
  let a = -1, b = -1;
  try {
    a = native.udpOpen(LOOPBACK, 0, 0);
    b = native.udpOpen(LOOPBACK, 0, 0);
    const portB = native.udpLocalPort(b);
    const tx = batch(4);
    tx.lengths.set([200, 50, 100, 60]);
    tx.addrs.fill(LOOPBACK);
    tx.ports.set([portB, 0, portB, portB]); // port 0: EINVAL for that datagram only
    tx.buf.fill(7);
    assert.equal(native.sendBatch(a, tx.buf, tx.offsets, tx.lengths, tx.addrs, tx.ports, 4), 4, 'all consumed');
    assert.deepEqual(Array.from(tx.lengths), [200, -22, 100, 60], 'datagram 1 marked -EINVAL');

    const rx = batch(4, 128);
    const n = native.recvBatch(b, rx.buf, rx.offsets, rx.lengths, 128, rx.addrs, rx.ports, 4);
    assert.equal(n, 3);
    assert.deepEqual(Array.from(rx.lengths.subarray(0, 3)), [-1, 100, 60], '200 bytes > maxLen 128 → -1');
    assert.equal(native.recvBatch(b, rx.buf, rx.offsets, rx.lengths, 128, rx.addrs, rx.ports, 4), 0);

    // A datagram above the UDP maximum is rejected with EMSGSIZE, the batch goes on.
    const big = batch(2, 70000);
    big.lengths.set([70000, 10]);
    big.addrs.fill(LOOPBACK);
    big.ports.fill(portB);
    assert.equal(native.sendBatch(a, big.buf, big.offsets, big.lengths, big.addrs, big.ports, 2), 2);
    assert.deepEqual(Array.from(big.lengths), [-90, 10]);
  } finally {
    if (a >= 0) native.closeFd(a);
    if (b >= 0) native.closeFd(b);
  }
});

test('argument and system errors are typed', () => {
  const rx = batch(4);
  assert.throws(() => native.recvBatch(1 << 30, rx.buf, rx.offsets, rx.lengths, SLOT, rx.addrs, rx.ports, 4),
    { code: 'EBADF', errno: -9, syscall: 'recvmmsg' });
  assert.throws(() => native.recvBatch(0, rx.buf, rx.offsets, rx.lengths, SLOT, rx.addrs, rx.ports, 5),
    { name: 'RangeError', message: /count \(5\) exceeds offsets\.length \(4\)/ });
  assert.throws(() => native.recvBatch(0, rx.buf, rx.offsets, rx.lengths, SLOT + 1, rx.addrs, rx.ports, 4),
    { name: 'RangeError', message: /offsets\[3\] \(6144\) \+ maxLen \(2049\)/ });
  assert.throws(() => native.sendBatch(0, rx.buf, rx.offsets, rx.lengths, new Uint32Array(2), rx.ports, 4),
    { name: 'RangeError', message: /addrs\.length/ });
  assert.throws(() => native.recvBatch(0, rx.buf, rx.offsets, rx.lengths, SLOT, rx.addrs, new Uint32Array(4) as unknown as Uint16Array, 4),
    { name: 'TypeError', message: /recvBatch: ports must be a Uint16Array/ });
  assert.throws(() => native.udpOpen(LOOPBACK, 70000, 0), { name: 'RangeError', message: /port/ });
  const a = native.udpOpen(LOOPBACK, 0, 0);
  try {
    assert.throws(() => native.udpOpen(LOOPBACK, native.udpLocalPort(a), 0),
      (e: unknown) => e instanceof Error && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' &&
        (e as NodeJS.ErrnoException).syscall === 'bind' && /127\.0\.0\.1:\d+/.test(e.message));
  } finally {
    native.closeFd(a);
  }
});

test('stop() pauses callbacks, start() resumes them (level-triggered)', async () => {
  let a = -1, b = -1;
  let poller: Poller | undefined;
  try {
    a = native.udpOpen(LOOPBACK, 0, 0);
    b = native.udpOpen(LOOPBACK, 0, 0);
    const tx = batch(1);
    tx.lengths[0] = 10;
    tx.addrs[0] = LOOPBACK;
    tx.ports[0] = native.udpLocalPort(b);
    let calls = 0;
    poller = new native.Poller(b, () => { calls++; });
    poller.start();
    poller.stop();
    poller.stop(); // idempotent
    assert.equal(native.sendBatch(a, tx.buf, tx.offsets, tx.lengths, tx.addrs, tx.ports, 1), 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls, 0, 'no callback while stopped');
    poller.start();
    await until(() => calls > 0, 2000, 'callback after start()');
    poller.close();
    assert.throws(() => poller?.start(), { code: 'ERR_POLLER_CLOSED' });
    poller.stop(); // no-op after close
  } finally {
    poller?.close();
    if (a >= 0) native.closeFd(a);
    if (b >= 0) native.closeFd(b);
  }
});

test('an exception in onReadable reaches uncaughtException; closed pollers let the process exit', async () => {
  const binding = fileURLToPath(new URL('../../src/native/binding.js', import.meta.url));
  const script = `
    const { native } = await import(process.argv[1]);
    const a = native.udpOpen(0x7f000001, 0, 0), b = native.udpOpen(0x7f000001, 0, 0);
    const p = new native.Poller(b, () => { throw new Error('boom from onReadable'); });
    process.on('uncaughtException', (e) => {
      console.log('caught:', e.message);
      p.close(); native.closeFd(a); native.closeFd(b);
    });
    p.start();
    const o = new Int32Array(1), l = new Int32Array([4]);
    native.sendBatch(a, Buffer.alloc(4), o, l, new Uint32Array([0x7f000001]), new Uint16Array([native.udpLocalPort(b)]), 1);
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, binding], { timeout: 10_000 });
  assert.match(stdout, /caught: boom from onReadable/);
});

test('worker threads: the addon loads per thread, and terminating a worker with a started Poller is clean', async () => {
  const binding = fileURLToPath(new URL('../../src/native/binding.js', import.meta.url));
  // Each worker leaves its poller started with an unread datagram queued, so
  // it fires during termination; teardown must close the uv handle, not abort.
  const script = `
    import { Worker } from 'node:worker_threads';
    const worker = \`
      const { native } = await import(process.env.SLNT_BINDING);
      const { parentPort } = await import('node:worker_threads');
      const a = native.udpOpen(0x7f000001, 0, 0), b = native.udpOpen(0x7f000001, 0, 0);
      const p = new native.Poller(b, () => parentPort.postMessage(native.checksum(Buffer.from([0, 1, 0xf2, 3]), 0, 4, 0)));
      p.start();
      native.sendBatch(a, Buffer.alloc(4), new Int32Array(1), new Int32Array([4]), new Uint32Array([0x7f000001]),
        new Uint16Array([native.udpLocalPort(b)]), 1);
    \`;
    for (let k = 0; k < 3; k++) {
      const w = new Worker(worker, { eval: true, type: 'module' });
      const sum = await new Promise((res) => w.once('message', res));
      console.log('worker', k, 'sum', sum.toString(16), 'exit', await w.terminate());
    }
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script],
    { timeout: 20_000, env: { ...process.env, SLNT_BINDING: binding } });
  assert.deepEqual(stdout.trim().split('\n'), [0, 1, 2].map((k) => `worker ${k} sum f204 exit 1`));
});
