// Transmit queues: packets chosen for one output during a batch are recorded as
// (offset, length) pairs into the batch buffer and flushed with one native call.
import { native } from '../native/binding.js';

export class TxQueue {
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  count = 0;
  /** Packets that the kernel did not take (full queue); reported as drops. */
  dropped = 0;
  sentPackets = 0;
  sentBytes = 0;

  constructor(readonly capacity: number) {
    this.offsets = new Int32Array(capacity);
    this.lengths = new Int32Array(capacity);
    this.addrs = new Uint32Array(capacity);
    this.ports = new Uint16Array(capacity);
  }

  /** Queues a packet; returns false when the queue is full (caller counts a drop). */
  push(off: number, len: number, addr = 0, port = 0): boolean {
    const i = this.count;
    if (i >= this.capacity) return false;
    this.offsets[i] = off;
    this.lengths[i] = len;
    this.addrs[i] = addr;
    this.ports[i] = port;
    this.count = i + 1;
    return true;
  }

  /** Writes everything queued to a TUN fd in one native call; returns how many the kernel refused. */
  flushTun(fd: number, buf: Buffer): number {
    if (this.count === 0) return 0;
    return this.#settle(native.writeBatch(fd, buf, this.offsets, this.lengths, this.count));
  }

  /** Sends everything queued from a UDP socket in one native call; returns how many the kernel refused. */
  flushUdp(fd: number, buf: Buffer): number {
    if (this.count === 0) return 0;
    return this.#settle(native.sendBatch(fd, buf, this.offsets, this.lengths, this.addrs, this.ports, this.count));
  }

  /** `consumed` packets were tried; the kernel rejected those it marked with a negative length. */
  #settle(consumed: number): number {
    let written = 0;
    for (let i = 0; i < consumed; i++) {
      const len = this.lengths[i];
      if (len >= 0) { written++; this.sentBytes += len; }
    }
    const refused = this.count - written;
    this.dropped += refused;
    this.sentPackets += written;
    this.count = 0;
    return refused;
  }
}
