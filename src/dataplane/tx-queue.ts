// Transmit queues: packets chosen for one output during a batch are recorded as
// (offset, length) pairs into the batch buffer and flushed with one native call.
// A queued packet may be a TCP super-packet (gso = its MSS): the flush hands it
// to the kernel whole (TUN with virtio header) or cut into segments (UDP,
// with UDP_SEGMENT when allowed; a TUN without offloads).
import { native } from '../native/binding.js';

export class TxQueue {
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  readonly gso: Int32Array;
  count = 0;
  /** Super-packets queued since the last flush: when 0, the plain native calls suffice. */
  #supers = 0;
  /** Packets that the kernel did not take (full queue); reported as drops. */
  dropped = 0;
  #sentPackets = 0;
  #sentBytes = 0;
  /** The fd this queue writes to, whose native fast-path sends are counted with ours (-1: none). */
  countFd = -1;

  constructor(readonly capacity: number) {
    this.offsets = new Int32Array(capacity);
    this.lengths = new Int32Array(capacity);
    this.addrs = new Uint32Array(capacity);
    this.ports = new Uint16Array(capacity);
    this.gso = new Int32Array(capacity);
  }

  /** Queues a packet; returns false when the queue is full (caller counts a drop). */
  push(off: number, len: number, addr = 0, port = 0, gso = 0): boolean {
    const i = this.count;
    if (i >= this.capacity) return false;
    this.offsets[i] = off;
    this.lengths[i] = len;
    this.addrs[i] = addr;
    this.ports[i] = port;
    this.gso[i] = gso;
    if (gso !== 0) this.#supers++;
    this.count = i + 1;
    return true;
  }

  get full(): boolean { return this.count >= this.capacity; }

  /** Packets (super-packets count once) sent from this queue and by the native fast path to the same fd. */
  get sentPackets(): number {
    return this.#sentPackets + (this.countFd >= 0 ? native.fastPathFdStats(this.countFd).txPackets : 0);
  }

  get sentBytes(): number {
    return this.#sentBytes + (this.countFd >= 0 ? native.fastPathFdStats(this.countFd).txBytes : 0);
  }

  /**
   * Writes everything queued to a TUN fd in one native call; returns how many
   * the kernel refused. `vnet`: the TUN was opened with a virtio header.
   */
  flushTun(fd: number, buf: Buffer, vnet = false): number {
    if (this.count === 0) return 0;
    const n = vnet || this.#supers > 0
      ? native.writeBatchGso(fd, buf, this.offsets, this.lengths, this.gso, this.count, vnet ? 1 : 0)
      : native.writeBatch(fd, buf, this.offsets, this.lengths, this.count);
    return this.#settle(n);
  }

  /**
   * Sends everything queued from a UDP socket in one native call; returns how
   * many the kernel refused. Each entry is `prefixLen` bytes of overlay header
   * then the IP packet (super-packets are cut behind copies of the header);
   * `useGso`: trains go as UDP_SEGMENT messages.
   */
  flushUdp(fd: number, buf: Buffer, prefixLen = 0, useGso = false): number {
    if (this.count === 0) return 0;
    const n = useGso || this.#supers > 0
      ? native.sendBatchGso(fd, buf, this.offsets, this.lengths, this.addrs, this.ports, this.gso, this.count,
        prefixLen, useGso ? 1 : 0)
      : native.sendBatch(fd, buf, this.offsets, this.lengths, this.addrs, this.ports, this.count);
    return this.#settle(n);
  }

  /** `consumed` packets were tried; the kernel rejected those it marked with a negative length. */
  #settle(consumed: number): number {
    let written = 0;
    for (let i = 0; i < consumed; i++) {
      const len = this.lengths[i];
      if (len >= 0) { written++; this.#sentBytes += len; }
    }
    const refused = this.count - written;
    this.dropped += refused;
    this.#sentPackets += written;
    this.count = 0;
    this.#supers = 0;
    return refused;
  }
}
