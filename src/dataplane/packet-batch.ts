// A batch of packet slots in one preallocated buffer, filled by one native call.
//
//   slot i: [ headroom | packet ........ ]   offsets[i] = i*slotSize + headroom
//
// The headroom in front of every packet lets the overlay write its header in
// place (VXLAN + Ethernet), so encapsulation never copies. Spare slots after the
// receive slots hold packets the dataplane makes itself (ICMP errors), so every
// packet of a batch lives in the same buffer and transmits with one native call.
//
// With offloads a slot may hold a TCP super-packet (up to 64 KiB): gso[i] is
// its segment size (MSS), 0 for an ordinary packet. A UDP receive slot may
// hold a train of datagrams (UDP_GRO, gso[i] = datagram size), which
// CoalescedPackets turns into packets.

export const HEADROOM = 64;

export class PacketBatch {
  readonly buf: Buffer;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  /** Underlay sender address/port per slot (used by UDP receive batches). */
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  /** Per slot: MSS of a TCP super-packet (TUN reads), datagram size of a UDP_GRO train (UDP receives), else 0. */
  readonly gso: Int32Array;
  readonly maxLen: number;
  #spareNext = 0;

  constructor(readonly size: number, readonly slotSize: number, readonly spare = 8) {
    const slots = size + spare;
    this.buf = Buffer.alloc(slots * slotSize);
    this.offsets = new Int32Array(slots);
    this.lengths = new Int32Array(slots);
    this.addrs = new Uint32Array(slots);
    this.ports = new Uint16Array(slots);
    this.gso = new Int32Array(slots);
    this.maxLen = slotSize - HEADROOM;
    for (let i = 0; i < slots; i++) this.offsets[i] = i * slotSize + HEADROOM;
  }

  /** Resets the spare slots; call at the start of each batch. */
  beginBatch(): void { this.#spareNext = 0; }

  /** Offset of a free spare slot for a locally made packet, or -1 when all are used. */
  takeSpare(): number {
    if (this.#spareNext >= this.spare) return -1;
    return this.offsets[this.size + this.#spareNext++];
  }
}

/** Most datagrams one UDP_GRO train holds (the kernel's UDP_MAX_SEGMENTS). */
export const MAX_TRAIN = 128;

/**
 * The packets of a UDP receive batch after native.groCoalesce: packet p at
 * (offsets[p], lengths[p]) in the batch buffer, received in slot slots[p]
 * (for its sender), a TCP super-packet of MSS gso[p] when gso[p] > 0.
 */
export class CoalescedPackets {
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly gso: Int32Array;
  readonly slots: Int32Array;

  /** Room for every datagram of `slots` full trains, so coalescing never drops. */
  constructor(readonly slotsIn: number) {
    const cap = slotsIn * MAX_TRAIN;
    this.offsets = new Int32Array(cap);
    this.lengths = new Int32Array(cap);
    this.gso = new Int32Array(cap);
    this.slots = new Int32Array(cap);
  }
}
