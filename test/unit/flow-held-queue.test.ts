import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/dataplane/endpoint.js';
import { HEADROOM, type PacketBatch } from '../../src/dataplane/packet-batch.js';
import { FlowEntry } from '../../src/flow/flow-entry.js';
import { HeldQueue } from '../../src/flow/held-queue.js';
import { endpoint } from './flow-fixtures.js';

interface Released { data: Buffer; from: Endpoint | undefined; to: Endpoint | undefined; headroom: boolean }

function collector(): { out: Released[]; calls: number[]; fn: (b: PacketBatch, n: number, f: (Endpoint | undefined)[], t: (Endpoint | undefined)[]) => void } {
  const out: Released[] = [];
  const calls: number[] = [];
  return {
    out, calls,
    fn: (b, n, f, t) => {
      calls.push(n);
      for (let i = 0; i < n; i++) {
        const off = b.offsets[i];
        out.push({ data: Buffer.from(b.buf.subarray(off, off + b.lengths[i])), from: f[i], to: t[i], headroom: off >= HEADROOM });
      }
    },
  };
}

function packet(tag: number, len: number): Buffer {
  const p = Buffer.alloc(len, tag & 0xff);
  p.writeUInt32BE(tag, 0);
  return p;
}

/** Puts `pkt` at an odd offset of a bigger buffer, as in a read batch. */
function inBatch(pkt: Buffer): [Buffer, number, number] {
  const b = Buffer.alloc(pkt.length + 200, 0xee);
  pkt.copy(b, 100);
  return [b, 100, pkt.length];
}

const epA = endpoint('x', 'a', '10.0.1.10');
const epB = endpoint('x', 'b', '10.0.1.11');

describe('HeldQueue', () => {
  it('releases a flow\'s packets in order, with their endpoints and headroom, in chunks', () => {
    const c = collector();
    const q = new HeldQueue({ capacity: 64, releaseBatch: 4 }, c.fn);
    const e1 = new FlowEntry(), e2 = new FlowEntry();
    for (let i = 0; i < 6; i++) assert.ok(q.hold(e1, ...inBatch(packet(100 + i, 60 + i)), epA, epB));
    assert.ok(q.hold(e2, ...inBatch(packet(200, 1400)), undefined, epA));
    assert.equal(q.held, 7);
    assert.equal(e1.heldCount, 6);
    q.release(e2);
    q.release(e1);
    q.flush();
    assert.deepEqual(c.calls, [4, 3]);
    assert.deepEqual(c.out.map((r) => r.data.readUInt32BE(0)), [200, 100, 101, 102, 103, 104, 105]);
    assert.deepEqual(c.out.map((r) => r.data.length), [1400, 60, 61, 62, 63, 64, 65]);
    assert.ok(c.out.every((r) => r.headroom));
    assert.equal(c.out[0].from, undefined);
    assert.equal(c.out[0].to, epA);
    assert.equal(c.out[1].from, epA);
    assert.equal(c.out[1].to, epB);
    assert.equal(q.held, 0);
    assert.equal(q.released, 7);
    assert.equal(e1.heldCount, 0);
    assert.equal(q.free, 64 + 16);
  });

  it('bounds each flow (perFlow) and the whole queue, counting what it refuses', () => {
    const q = new HeldQueue({ capacity: 8, perFlow: 3, largeSlots: 1 });
    const flows = Array.from({ length: 5 }, () => new FlowEntry());
    let accepted = 0;
    for (const e of flows) for (let i = 0; i < 4; i++) if (q.hold(e, ...inBatch(packet(i, 100)), epA, epB)) accepted++;
    // 8 small slots + 1 large slot used by a small packet once the small ones ran out.
    assert.equal(accepted, 9);
    assert.equal(q.held, 9);
    assert.equal(q.flowFull, 3, 'the 4th packet of each of the first three flows');
    assert.equal(q.queueFull, 20 - 9 - 3);
    assert.equal(q.free, 0);
    assert.deepEqual({ capacity: q.stats().capacity, held: q.stats().held, queueFull: q.stats().queueFull }, { capacity: 8, held: 9, queueFull: 8 });
    assert.equal(new HeldQueue().stats().capacity, 1024, 'the default');
    // Dropping frees the slots for others.
    const freed = q.drop(flows[0]);
    assert.equal(freed, 300);
    assert.equal(q.dropped, 3);
    assert.equal(q.free, 3);
    assert.ok(q.hold(flows[4], ...inBatch(packet(9, 100)), epA, epB));
  });

  it('keeps packets longer than a small slot in large slots, and refuses what fits neither', () => {
    const c = collector();
    const q = new HeldQueue({ capacity: 4, slotSize: 256, largeSlots: 1, largeSlotSize: 4096 }, c.fn);
    const e = new FlowEntry();
    assert.ok(q.hold(e, ...inBatch(packet(1, 3000)), epA, epB));
    assert.equal(q.hold(e, ...inBatch(packet(2, 3000)), epA, epB), false);
    assert.equal(q.queueFull, 1);
    assert.equal(q.hold(e, ...inBatch(packet(3, 5000)), epA, epB), false);
    assert.equal(q.tooBig, 1);
    assert.ok(q.hold(e, ...inBatch(packet(4, 100)), epA, epB));
    q.release(e);
    q.flush();
    assert.deepEqual(c.out.map((r) => [r.data.readUInt32BE(0), r.data.length]), [[1, 3000], [4, 100]]);
    assert.ok(c.out[0].data.subarray(4).every((b) => b === 1), 'the large packet is copied whole');
  });

  it('a packet held during onRelease (a re-miss) goes to a free slot and is not lost', () => {
    const q = new HeldQueue({ capacity: 2, releaseBatch: 2 });
    const e1 = new FlowEntry(), e2 = new FlowEntry();
    q.hold(e1, ...inBatch(packet(1, 80)), epA, epB);
    q.hold(e1, ...inBatch(packet(2, 80)), epA, epB);
    const seen: number[] = [];
    q.onRelease = (b, n) => {
      for (let i = 0; i < n; i++) seen.push(b.buf.readUInt32BE(b.offsets[i]));
      assert.ok(q.hold(e2, ...inBatch(packet(3, 80)), epA, epB));
    };
    q.release(e1);
    q.flush();
    assert.deepEqual(seen, [1, 2]);
    assert.equal(e2.heldCount, 1);
  });

  it('keeps the GSO meta of a held super-packet (its MSS) and releases it with the packet', () => {
    const seen: [number, number][] = [];
    const q = new HeldQueue({ capacity: 4, slotSize: 256, largeSlots: 1, largeSlotSize: 70_000 }, (b, n) => {
      for (let i = 0; i < n; i++) seen.push([b.lengths[i], b.gso[i]]);
    });
    const e = new FlowEntry();
    assert.ok(q.hold(e, ...inBatch(packet(1, 100)), epA, epB));
    assert.ok(q.hold(e, ...inBatch(packet(2, 30_000)), epA, epB, 1448));
    assert.ok(q.hold(e, ...inBatch(packet(3, 120)), epA, epB, 0));
    q.release(e);
    q.flush();
    assert.deepEqual(seen, [[100, 0], [30_000, 1448], [120, 0]]);
  });

  it('without an onRelease, released packets are counted as dropped', () => {
    const q = new HeldQueue({ capacity: 4 });
    const e = new FlowEntry();
    q.hold(e, ...inBatch(packet(1, 80)), epA, epB);
    q.release(e);
    q.flush();
    assert.equal(q.released, 0);
    assert.equal(q.dropped, 1);
    assert.equal(q.held, 0);
  });

  it('rejects bad options with the option named', () => {
    assert.throws(() => new HeldQueue({ capacity: 0 }), /HeldQueue: capacity must be an integer >= 1, got 0/);
    assert.throws(() => new HeldQueue({ perFlow: 2.5 }), /HeldQueue: perFlow must be an integer >= 1, got 2.5/);
  });
});
