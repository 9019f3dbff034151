// openTun/readBatch/writeBatch/Poller on a real TUN device moved into a
// network namespace made here; we answer the namespace's pings ourselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { finish } from '../../src/packet/checksum.js';
import { native, TunFlags, type Poller } from '../../src/native/binding.js';

const run = promisify(execFile);
const skip = process.getuid?.() !== 0 ? 'needs root (TUN devices and network namespaces)'
  : !existsSync('/dev/net/tun') ? '/dev/net/tun is missing' : false;

const NS = `slnt-${process.pid}`;
const TUN = `slnt${process.pid}`; // ≤ 11 chars (pid ≤ 7 digits), under IFNAMSIZ
const BATCH = 32;
const SLOT = 2048;

/** Preallocated read batch plus the write batch of replies (a subset of the read slots). */
function batch() {
  const offsets = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) offsets[i] = i * SLOT;
  return {
    buf: Buffer.alloc(BATCH * SLOT), offsets, lengths: new Int32Array(BATCH),
    outOffsets: new Int32Array(BATCH), outLengths: new Int32Array(BATCH),
  };
}

/**
 * Turns the IPv4 ICMP echo request at `off` into its echo reply in place;
 * false (packet untouched) for anything else. Returns the ICMP checksum
 * mismatch, if any, between a recompute and an RFC 1624 incremental update.
 */
function echoReply(buf: Buffer, off: number, len: number): { ok: boolean; incrementalMismatch: boolean } {
  if (len < 28 || buf[off] >> 4 !== 4 || buf[off + 9] !== 1) return { ok: false, incrementalMismatch: false };
  const ihl = (buf[off] & 0x0f) * 4;
  const icmp = off + ihl;
  if (buf[icmp] !== 8 || buf.readUInt16BE(off + 2) !== len) return { ok: false, incrementalMismatch: false };
  const src = buf.readUInt32BE(off + 12);
  buf.writeUInt32BE(buf.readUInt32BE(off + 16), off + 12);
  buf.writeUInt32BE(src, off + 16);
  buf[off + 8] = 64; // fresh TTL
  buf.writeUInt16BE(native.ipv4HeaderChecksum(buf, off), off + 10);
  const oldCsum = buf.readUInt16BE(icmp + 2);
  const oldWord = buf.readUInt16BE(icmp);
  buf[icmp] = 0; // type 0 = echo reply, code unchanged
  const incremental = native.incrementalUpdate(oldCsum, oldWord, buf.readUInt16BE(icmp));
  buf.writeUInt16BE(0, icmp + 2);
  const full = finish(native.checksum(buf, icmp, len - ihl, 0));
  buf.writeUInt16BE(full, icmp + 2);
  return { ok: true, incrementalMismatch: incremental !== full };
}

test('openTun: flags, kernel-chosen names and typed errors', { skip }, () => {
  // IFF_MULTI_QUEUE: two queues on one device name.
  const q1 = native.openTun(`${TUN}m`, TunFlags.MultiQueue);
  try {
    const q2 = native.openTun(`${TUN}m`, TunFlags.MultiQueue);
    assert.equal(q2.name, q1.name);
    native.closeFd(q2.fd);
  } finally {
    native.closeFd(q1.fd);
  }
  // A '%d' pattern is resolved by the kernel; IFF_VNET_HDR is accepted.
  const v = native.openTun('slnt%d', TunFlags.VnetHdr);
  native.closeFd(v.fd);
  assert.match(v.name, /^slnt\d+$/);

  assert.throws(() => native.openTun('slnt/bad', 0), { code: 'EINVAL', errno: -22, syscall: 'ioctl', message: /EINVAL: .*ioctl\(TUNSETIFF\) 'slnt\/bad'/ });
  assert.throws(() => native.openTun('slnt-too-long-name', 0), { name: 'RangeError', message: /at most 15 bytes/ });
  assert.throws(() => native.openTun(TUN, 4), { name: 'RangeError', message: /flags/ });
  const b = batch();
  assert.throws(() => native.readBatch(1 << 30, b.buf, b.offsets, b.lengths, SLOT, 1), { code: 'EBADF', errno: -9, syscall: 'read' });
  assert.throws(() => native.writeBatch(1 << 30, b.buf, b.offsets, b.lengths, 1), { code: 'EBADF', syscall: 'write' });
});

test('answers pings from a netns through a TUN: Poller + readBatch + writeBatch', { skip, timeout: 30_000 }, async () => {
  const ping = await run('which', ['ping']).then((r) => r.stdout.trim(), () => '');
  assert.ok(ping, '`ping` not found: install iputils-ping');

  let fd = -1;
  let nsMade = false;
  let poller: Poller | undefined;
  try {
    const tun = native.openTun(TUN, 0);
    fd = tun.fd;
    assert.equal(tun.name, TUN);
    const b = batch();

    // Link still down: nothing to read, and readBatch says so with 0.
    assert.equal(native.readBatch(fd, b.buf, b.offsets, b.lengths, SLOT, BATCH), 0);
    // Slots are validated per batch, naming the bad index.
    const bad = Int32Array.from(b.offsets);
    bad[3] = b.buf.length - 100;
    assert.throws(() => native.readBatch(fd, b.buf, bad, b.lengths, SLOT, BATCH),
      { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /readBatch: offsets\[3\]/ });
    bad[3] = -1;
    assert.throws(() => native.writeBatch(fd, b.buf, bad, b.lengths, 4), { name: 'RangeError', message: /writeBatch: packet 3/ });

    await run('ip', ['netns', 'add', NS]);
    nsMade = true;
    await run('ip', ['link', 'set', TUN, 'netns', NS]);
    await run('ip', ['-n', NS, 'addr', 'add', '10.200.0.1/24', 'dev', TUN]);
    await run('ip', ['-n', NS, 'link', 'set', TUN, 'up']);

    let requests = 0, written = 0, mismatches = 0;
    const errors: unknown[] = [];
    poller = new native.Poller(fd, (err) => {
      try {
        if (err) throw err;
        for (let round = 0; round < 16; round++) {
          const n = native.readBatch(fd, b.buf, b.offsets, b.lengths, SLOT, BATCH);
          if (n === 0) break;
          let out = 0;
          for (let i = 0; i < n; i++) {
            const r = echoReply(b.buf, b.offsets[i], b.lengths[i]);
            if (!r.ok) continue; // e.g. IPv6 router solicitations
            requests++;
            if (r.incrementalMismatch) mismatches++;
            b.outOffsets[out] = b.offsets[i];
            b.outLengths[out] = b.lengths[i];
            out++;
          }
          if (out > 0) {
            const w = native.writeBatch(fd, b.buf, b.outOffsets, b.outLengths, out);
            for (let i = 0; i < w; i++) if (b.outLengths[i] >= 0) written++;
          }
        }
      } catch (e) {
        errors.push(e);
      }
    });
    poller.start();

    const { stdout } = await run('ip', ['netns', 'exec', NS, ping, '-c', '3', '-W', '1', '-i', '0.2', '-I', TUN, '10.200.0.2'],
      { timeout: 15_000 }); // rejects (failing the test) unless ping exits 0
    assert.match(stdout, /3 received/);
    assert.deepEqual(errors, []);
    assert.ok(requests >= 3, `saw ${requests} echo requests`);
    assert.equal(written, requests, 'every reply written');
    assert.equal(mismatches, 0, 'incremental update agreed with the recompute');
  } finally {
    poller?.close();
    poller?.close(); // idempotent
    if (fd >= 0) native.closeFd(fd);
    if (nsMade) await run('ip', ['netns', 'del', NS]).catch(() => undefined);
  }
});
