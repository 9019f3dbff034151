// Packets waiting for their flow's verdict. Each is copied out of the read batch
// (which is reused at once) into a preallocated slab slot with HEADROOM in front,
// so a released packet can still be encapsulated in place.
//
//   slab:  small slots (slotSize each) for ordinary packets, a few large slots
//          for anything longer; per-slot length, endpoints and next-in-flow link
//   flow:  HeldList.heldHead/heldTail/heldCount (the pending FlowEntry), a FIFO
//          list of slots
//
// Bounded per flow (perFlow) and globally (the slot counts): a packet that does
// not fit is dropped and counted, never queued unboundedly. On release, packets
// are copied in flow order into a PacketBatch and handed to `onRelease` in
// chunks; the batch is reused after onRelease returns. A TCP super-packet keeps
// its GSO meta (the MSS given to hold()): it is released with batch.gso[i] set.

import type { Endpoint } from '../dataplane/endpoint.js';
import { HEADROOM, PacketBatch } from '../dataplane/packet-batch.js';

/** A flow's list of held packets (FlowEntry has these fields). */
export interface HeldList {
  heldHead: number;
  heldTail: number;
  heldCount: number;
}

/** Receives released packets: slots 0..count-1 of `batch`, with the endpoints each leaves / enters. */
export type ReleaseFn = (batch: PacketBatch, count: number, from: (Endpoint | undefined)[], to: (Endpoint | undefined)[]) => void;

export interface HeldQueueOptions {
  /**
   * Small slots: the global bound on held packets of ordinary size (default 1024: ~10 ms of
   * new flows at the pool's 100k flows/s; a flood fills every slot, so each one is RSS — 2 MiB).
   */
  capacity?: number;
  /** Bytes per small slot, headroom included (default 2048). */
  slotSize?: number;
  /** Slots for packets longer than a small slot (default 16). */
  largeSlots?: number;
  /** Bytes per large slot, headroom included (default HEADROOM + 65536). */
  largeSlotSize?: number;
  /** Most packets held per flow (default 16). */
  perFlow?: number;
  /** Packets per onRelease call (default 32). */
  releaseBatch?: number;
}

export interface HeldQueueStats {
  /** Small slots (the `capacity` option): the bound on held packets of ordinary size. */
  capacity: number;
  held: number;
  heldTotal: number;
  released: number;
  dropped: number;
  flowFull: number;
  queueFull: number;
  tooBig: number;
}

function posInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new TypeError(`HeldQueue: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

export class HeldQueue {
  readonly perFlow: number;
  onRelease: ReleaseFn | undefined;
  /** Packets held now. */
  held = 0;
  heldTotal = 0;
  released = 0;
  /** Held packets dropped because their flow was denied or abandoned. */
  dropped = 0;
  /** Packets not held: their flow already had perFlow packets waiting. */
  flowFull = 0;
  /** Packets not held: no free slot of their size. */
  queueFull = 0;
  /** Packets not held: longer than a large slot. */
  tooBig = 0;

  readonly #small: PacketBatch;
  readonly #large: PacketBatch;
  readonly #nSmall: number;
  readonly #len: Int32Array;
  readonly #gso: Int32Array;
  readonly #next: Int32Array;
  readonly #from: (Endpoint | undefined)[];
  readonly #to: (Endpoint | undefined)[];
  /** Free slot stacks: small ids 0..nSmall-1, large ids nSmall.. */
  readonly #freeSmall: Int32Array;
  readonly #freeLarge: Int32Array;
  #freeSmallTop: number;
  #freeLargeTop: number;

  readonly #out: PacketBatch;
  readonly #outFrom: (Endpoint | undefined)[];
  readonly #outTo: (Endpoint | undefined)[];
  #outCount = 0;

  constructor(opts: HeldQueueOptions = {}, onRelease?: ReleaseFn) {
    const capacity = posInt('capacity', opts.capacity, 1024);
    const slotSize = posInt('slotSize', opts.slotSize, 2048, HEADROOM + 60);
    const largeSlots = posInt('largeSlots', opts.largeSlots, 16, 0);
    const largeSlotSize = posInt('largeSlotSize', opts.largeSlotSize, HEADROOM + 65536, slotSize);
    this.perFlow = posInt('perFlow', opts.perFlow, 16);
    const releaseBatch = posInt('releaseBatch', opts.releaseBatch, 32);
    this.onRelease = onRelease;
    this.#nSmall = capacity;
    this.#small = new PacketBatch(capacity, slotSize, 0);
    this.#large = new PacketBatch(largeSlots, largeSlotSize, 0);
    const total = capacity + largeSlots;
    this.#len = new Int32Array(total);
    this.#gso = new Int32Array(total);
    this.#next = new Int32Array(total).fill(-1);
    this.#from = new Array<Endpoint | undefined>(total).fill(undefined);
    this.#to = new Array<Endpoint | undefined>(total).fill(undefined);
    this.#freeSmall = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.#freeSmall[i] = capacity - 1 - i;
    this.#freeSmallTop = capacity;
    this.#freeLarge = new Int32Array(largeSlots);
    for (let i = 0; i < largeSlots; i++) this.#freeLarge[i] = capacity + largeSlots - 1 - i;
    this.#freeLargeTop = largeSlots;
    // Spare slots: the forwarder may answer a released packet with an ICMP error in the same batch.
    this.#out = new PacketBatch(releaseBatch, Math.max(slotSize, largeSlots > 0 ? largeSlotSize : 0), 8);
    this.#outFrom = new Array<Endpoint | undefined>(releaseBatch).fill(undefined);
    this.#outTo = new Array<Endpoint | undefined>(releaseBatch).fill(undefined);
  }

  get free(): number {
    return this.#freeSmallTop + this.#freeLargeTop;
  }

  stats(): HeldQueueStats {
    return {
      capacity: this.#nSmall, held: this.held, heldTotal: this.heldTotal, released: this.released, dropped: this.dropped,
      flowFull: this.flowFull, queueFull: this.queueFull, tooBig: this.tooBig,
    };
  }

  /**
   * Copies the packet buf[off, off+len) onto `e`'s list; `gso`: its MSS if a TCP super-packet,
   * 0 if not or unknown. False (and counted) when it does not fit.
   */
  hold(e: HeldList, buf: Buffer, off: number, len: number, from: Endpoint | undefined, to: Endpoint | undefined, gso = 0): boolean {
    if (e.heldCount >= this.perFlow) {
      this.flowFull++;
      return false;
    }
    let slot: number;
    let store: PacketBatch;
    let at: number;
    if (len <= this.#small.maxLen && this.#freeSmallTop > 0) {
      slot = this.#freeSmall[--this.#freeSmallTop];
      store = this.#small;
      at = slot;
    } else if (len <= this.#large.maxLen && this.#large.size > 0) {
      if (this.#freeLargeTop === 0) {
        this.queueFull++;
        return false;
      }
      slot = this.#freeLarge[--this.#freeLargeTop];
      store = this.#large;
      at = slot - this.#nSmall;
    } else {
      if (len > this.#large.maxLen || this.#large.size === 0) this.tooBig++;
      else this.queueFull++;
      return false;
    }
    buf.copy(store.buf, store.offsets[at], off, off + len);
    this.#len[slot] = len;
    this.#gso[slot] = gso;
    this.#from[slot] = from;
    this.#to[slot] = to;
    this.#next[slot] = -1;
    if (e.heldTail < 0) e.heldHead = slot;
    else this.#next[e.heldTail] = slot;
    e.heldTail = slot;
    e.heldCount++;
    this.held++;
    this.heldTotal++;
    return true;
  }

  /** Queues `e`'s held packets for onRelease (in order); call flush() after the last entry. */
  release(e: HeldList): void {
    let s = e.heldHead;
    e.heldHead = e.heldTail = -1;
    e.heldCount = 0;
    while (s >= 0) {
      if (this.#outCount === this.#outFrom.length) this.flush();
      const i = this.#outCount++;
      const small = s < this.#nSmall;
      const store = small ? this.#small : this.#large;
      const src = store.offsets[small ? s : s - this.#nSmall];
      const len = this.#len[s];
      store.buf.copy(this.#out.buf, this.#out.offsets[i], src, src + len);
      this.#out.lengths[i] = len;
      this.#out.gso[i] = this.#gso[s];
      this.#outFrom[i] = this.#from[s];
      this.#outTo[i] = this.#to[s];
      s = this.#free(s);
      this.released++;
    }
  }

  /** Drops `e`'s held packets; returns their total length (for the flow's counters). */
  drop(e: HeldList): number {
    let s = e.heldHead, bytes = 0;
    e.heldHead = e.heldTail = -1;
    e.heldCount = 0;
    while (s >= 0) {
      bytes += this.#len[s];
      s = this.#free(s);
      this.dropped++;
    }
    return bytes;
  }

  /** Hands the queued released packets to onRelease (without one they are dropped and counted so). */
  flush(): void {
    const n = this.#outCount;
    if (n === 0) return;
    this.#outCount = 0;
    const b = this.#out;
    b.beginBatch();
    try {
      if (this.onRelease !== undefined) this.onRelease(b, n, this.#outFrom, this.#outTo);
      else {
        this.released -= n;
        this.dropped += n;
      }
    } finally {
      for (let i = 0; i < n; i++) this.#outFrom[i] = this.#outTo[i] = undefined;
    }
  }

  /** Returns slot `s` to its free stack; returns the next slot of its flow. */
  #free(s: number): number {
    const next = this.#next[s];
    this.#next[s] = -1;
    this.#from[s] = this.#to[s] = undefined;
    this.held--;
    if (s < this.#nSmall) this.#freeSmall[this.#freeSmallTop++] = s;
    else this.#freeLarge[this.#freeLargeTop++] = s;
    return next;
  }
}
