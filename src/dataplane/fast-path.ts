// The JS side of the native fast path (native/fastpath.cc). The forwarder stays the one place
// that decides; once it has forwarded a packet of an IPv4 TCP/UDP/ICMP-echo flow, it installs
// the flow here, and the addon forwards the flow's next packets from the poll callback without
// calling JS, until the entry expires (ttlMs). So:
//   - the policy gate still sees every active flow at least every ttlMs, well within the flow
//     cache's idle timeouts (its counters miss the packets in between; fast-path totals are in
//     native.fastPathStats / fastPathFdStats);
//   - the forwarder clears the fast path when the gate's generation (a policy change) or the
//     router's (endpoints, peers) changes, so a change applies at once, not after ttlMs;
//   - TCP SYN/FIN/RST, TTL 1, oversized packets, IPv6, IP options, fragments and ICMP other than
//     echo always take the JS path.
// Misses found by the native poll reach JS as `pending` indices into the batch the addon read.
//
// Datapath threads (native/datapath.cc), with `threads` > 1: thread 0 is this (the JS) thread as
// above; threads 1..n-1 are native, each polling queue k of every endpoint's TUN (IFF_MULTI_QUEUE,
// Endpoint.queueFds[k-1]) and its own underlay socket, bound to the same address:port with
// SO_REUSEPORT and steered by a hash of the inner flow, and forwarding decided flows at once
// against the same, shared table. Their misses come back to JS through rings: the addon calls
// onMisses, which drains them (drain()) and forwards them as if read here.
//
//   endpoint TUN queue 0 ─Poller─► thread 0 (JS): fast path ─miss─► forwarder
//   endpoint TUN queue k ─epoll─► thread k: fast path ─miss─► ring k ─onMisses─► forwarder
//   underlay socket 0 / k  (SO_REUSEPORT group: by inner flow hash without UDP_GRO, else by peer)
//
// Environment: SLUICE_FASTPATH=off turns it off; SLUICE_FASTPATH_TTL_MS (default 5000) sets ttlMs;
// SLUICE_DATAPATH_MAIN=off keeps decided flows off the JS thread when there are datapath threads.
import { FastPathAttach, FastPathKind, FastPathOut, UdpOpenFlags, native } from '../native/binding.js';
import type { Endpoint } from './endpoint.js';
import type { CoalescedPackets, PacketBatch } from './packet-batch.js';

export interface FastPathOptions {
  /** How long an installed flow is forwarded natively before JS sees it again. */
  ttlMs: number;
}

/**
 * 5 s: long enough that a steady flow rarely takes the (cold, ~100 µs) JS hop again — at 500 ms
 * every 50th packet of a 100/s ping did, which showed in p99 — and short enough for the flow
 * cache's idle timeouts (≥ 60 s for open flows).
 */
export const DEFAULT_FAST_PATH: Readonly<FastPathOptions> = Object.freeze({ ttlMs: 5000 });

/** The fast path the environment asks for: null when SLUICE_FASTPATH=off. Throws a TypeError naming a bad variable. */
export function fastPathFromEnv(env: NodeJS.ProcessEnv = process.env): FastPathOptions | null {
  const on = env.SLUICE_FASTPATH;
  if (on !== undefined) {
    const t = on.trim().toLowerCase();
    if (t === 'off' || t === '0' || t === 'false') return null;
    if (t !== 'on' && t !== '1' && t !== 'true') throw new TypeError(`SLUICE_FASTPATH: expected on|off, got ${JSON.stringify(on)}`);
  }
  const ttl = env.SLUICE_FASTPATH_TTL_MS;
  if (ttl === undefined) return { ...DEFAULT_FAST_PATH };
  const n = Number(ttl);
  if (!Number.isInteger(n) || n < 1 || n > 600_000) throw new TypeError(`SLUICE_FASTPATH_TTL_MS: expected an integer 1..600000, got ${JSON.stringify(ttl)}`);
  return { ttlMs: n };
}

/** datapathStart flag: decided flows go to TUN queues 1..n-1 only. */
const MAIN_OFF = 4;

/** What the native datapath threads need (FastPath with threads > 1). */
export interface DatapathThreadsOptions {
  /** Datapath threads in all, this one included (1: none started). */
  threads: number;
  /** The main underlay socket's bind address (host order), port and socket buffer size, for the others. */
  bindAddr: number;
  port: number;
  bufBytes: number;
  /** Whether UDP_GRO is on on the main socket (then it is set on the others too). */
  gro: boolean;
  /** SCHED_FIFO priority for the threads (0: normal). */
  realtime: number;
  /** Microseconds a thread keeps polling, without sleeping, after a packet (0: it sleeps at once). */
  busyPollUs: number;
  /**
   * Whether the JS thread forwards decided flows too (default true: flows are spread over all n
   * threads). false: decided flows are written to queues 1..n-1 only and the underlay is steered to
   * the native threads' sockets, so a packet of a decided flow never waits for the event loop; the
   * JS thread keeps the slow path (SLUICE_DATAPATH_MAIN=off).
   */
  mainFastPath?: boolean;
  /** Called on this thread when the threads left packets for JS: drain them with FastPath.drain. */
  onMisses: () => void;
}

/** SLUICE_DATAPATH_MAIN=off: keep decided flows off the JS thread (DatapathThreadsOptions.mainFastPath false). */
export function datapathMainFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.SLUICE_DATAPATH_MAIN;
  if (v === undefined) return true;
  const t = v.trim().toLowerCase();
  if (t === 'off' || t === '0' || t === 'false') return false;
  if (t === 'on' || t === '1' || t === 'true') return true;
  throw new TypeError(`SLUICE_DATAPATH_MAIN: expected on|off, got ${JSON.stringify(v)}`);
}

/** Bytes of misses a datapath thread may queue for JS before it drops them (ringDrops). */
const RING_BYTES = 8 << 20;

export class FastPath {
  /** Misses of the last native poll of an endpoint TUN: [count, slot...] into the TUN batch. */
  readonly tunPending: Int32Array;
  /** Misses of the last native poll of the underlay: [count, index...] (coalesced packets with GRO, else slots). */
  readonly udpPending: Int32Array;
  /** After an install: [packets, bytes] the flow's previous entry forwarded natively (for the flow's counters). */
  readonly harvested = new Float64Array(2);
  readonly #ttlMs: number;
  readonly #tunBatch: PacketBatch;
  readonly #useGso: boolean;

  /** Datapath threads in all (1: only this one). */
  readonly threads: number;
  /** Why SCHED_FIFO was refused for the native threads, if it was. */
  readonly realtimeError: string | undefined;
  /** The other threads' underlay sockets (SO_REUSEPORT), index k-1 for thread k. */
  readonly #udpFds: number[] = [];
  /** Endpoints by queue-0 fd, for the threads' misses (their fds[i]). */
  readonly #byFd = new Map<number, Endpoint>();
  #closed = false;

  constructor(o: FastPathOptions, udpFd: number, udpBatch: PacketBatch, rx: CoalescedPackets | null, tunBatch: PacketBatch,
    prefixLen: number, useGso: boolean, dt?: DatapathThreadsOptions) {
    this.#ttlMs = o.ttlMs;
    this.#tunBatch = tunBatch;
    this.#useGso = useGso;
    this.threads = dt?.threads ?? 1;
    this.tunPending = new Int32Array(tunBatch.size + 1);
    this.udpPending = new Int32Array((rx ? rx.offsets.length : udpBatch.size) + 1);
    const b = udpBatch;
    if (rx) {
      native.fastPathAttach(udpFd, FastPathKind.Udp, b.buf, b.offsets, b.lengths, b.gso, b.addrs, b.ports, b.size, b.maxLen,
        this.udpPending, prefixLen, FastPathAttach.UdpGro | (useGso ? FastPathAttach.UdpGso : 0), rx.offsets, rx.lengths, rx.gso, rx.slots);
    } else {
      native.fastPathAttach(udpFd, FastPathKind.Udp, b.buf, b.offsets, b.lengths, b.gso, b.addrs, b.ports, b.size, b.maxLen,
        this.udpPending, prefixLen, useGso ? FastPathAttach.UdpGso : 0);
    }
    this.realtimeError = dt && dt.threads > 1 ? this.#startThreads(dt, udpFd, tunBatch, prefixLen, useGso) : undefined;
  }

  /** Starts threads 1..n-1, each with its own underlay socket in udpFd's SO_REUSEPORT group. */
  #startThreads(dt: DatapathThreadsOptions, udpFd: number, tunBatch: PacketBatch, prefixLen: number, useGso: boolean): string | undefined {
    const mainOff = dt.mainFastPath === false;
    const flags = (useGso ? FastPathAttach.UdpGso : 0) | (dt.gro ? FastPathAttach.UdpGro : 0) | (mainOff ? MAIN_OFF : 0);
    const rtErr = native.datapathStart(dt.threads, dt.onMisses, tunBatch.size, tunBatch.maxLen, prefixLen, flags, RING_BYTES,
      dt.realtime, dt.busyPollUs);
    try {
      for (let k = 1; k < dt.threads; k++) {
        const fd = native.udpOpen(dt.bindAddr, dt.port, dt.bufBytes, UdpOpenFlags.ReusePort);
        this.#udpFds.push(fd);
        if (dt.gro && (!mainOff || k === 1)) native.udpSetGro(fd, 1);
        native.datapathAttach(k, fd, FastPathKind.Udp, udpFd);
      }
      if (mainOff) {
        // Everything to the native sockets. With UDP_GRO only socket 1 merges trains (the kernel
        // delivers a merged train to the socket its own hash picked, without the program), and the
        // program sends every single datagram to socket 1 too: one receiving thread, no reordering.
        if (dt.gro) native.udpSetGro(udpFd, 0);
        native.udpSetSteering(udpFd, prefixLen, dt.gro ? 2 : dt.threads, 1);
      } else if (!dt.gro) {
        // Not with UDP_GRO: the kernel picks the socket of merged trains by its own hash, without the
        // program, so single datagrams must go the same way or a flow would be split over threads.
        native.udpSetSteering(udpFd, prefixLen, dt.threads);
      }
    } catch (err) {
      this.close();
      throw err;
    }
    return rtErr === 0 ? undefined : `SCHED_FIFO ${dt.realtime} refused for the datapath threads (errno ${rtErr})`;
  }

  /** Stops the native threads and closes their sockets (idempotent). Endpoints are detached by Endpoint.close. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The threads are per process: one started by another FastPath (threads > 1) is not ours to stop.
    if (this.threads > 1) native.datapathStop();
    for (const fd of this.#udpFds) {
      native.fastPathForget(fd);
      native.closeFd(fd);
    }
    this.#udpFds.length = 0;
  }

  /** The endpoint whose queue 0 is fd (a thread's miss came from one of its queues), if still open. */
  endpointOf(fd: number): Endpoint | undefined {
    const ep = this.#byFd.get(fd);
    if (ep !== undefined && ep.fd !== fd) {
      this.#byFd.delete(fd);
      return undefined;
    }
    return ep;
  }

  /**
   * Moves up to b.size misses of the threads into b (fds[i]: where packet i came from); see
   * native.datapathDrain. dropped[0]: misses the full rings dropped since the previous drain.
   */
  drain(b: PacketBatch, fds: Int32Array, dropped: Float64Array): number {
    return native.datapathDrain(b.buf, b.offsets, b.lengths, b.gso, b.addrs, b.ports, fds, b.size, b.maxLen, dropped);
  }

  /** Lets the endpoint's Poller forward decided flows natively (once per endpoint; undone by Endpoint.close). */
  attach(ep: Endpoint): void {
    if (ep.fastPath || ep.fd < 0) return;
    const b = this.#tunBatch, kind = ep.vnet ? FastPathKind.TunVnet : FastPathKind.TunPlain;
    native.fastPathAttach(ep.fd, kind, b.buf, b.offsets, b.lengths, b.gso,
      b.addrs, b.ports, b.size, b.maxLen, this.tunPending, 0, this.#useGso ? FastPathAttach.UdpGso : 0);
    ep.fastPath = true;
    if (this.threads > 1 && !this.#closed) {
      // Listed first: if attaching a later queue throws, the misses of those attached are still its.
      this.#byFd.set(ep.fd, ep);
      // Queue k to thread k; queues beyond the threads (none, normally) go to thread 1 and on.
      ep.queueFds.forEach((fd, i) => native.datapathAttach(1 + (i % (this.threads - 1)), fd, kind, ep.fd));
    }
  }

  /** The packet at buf[off, +len], from ingressFd, went to a peer behind the overlay header at buf[start, off). */
  installToPeer(buf: Buffer, off: number, len: number, start: number, ingressFd: number, udpFd: number, mtu: number,
    peerAddr: number, peerPort: number): void {
    native.fastPathInstall(buf, off, len, start, off - start, ingressFd, 0, 0, udpFd, FastPathOut.ToPeer, mtu, peerAddr, peerPort,
      this.#ttlMs, this.harvested);
  }

  /**
   * The packet at buf[off, +len] went to a local endpoint. It came in on ingressFd: an endpoint's TUN
   * (outerAddr 0), or the underlay from outerAddr:outerPort with the overlay header buf[prefixOff, off).
   */
  installToEndpoint(buf: Buffer, off: number, len: number, prefixOff: number, ingressFd: number, outerAddr: number,
    outerPort: number, to: Endpoint): void {
    native.fastPathInstall(buf, off, len, prefixOff, off - prefixOff, ingressFd, outerAddr, outerPort, to.fd,
      to.vnet ? FastPathOut.Vnet : 0, to.mtu, 0, 0, this.#ttlMs, this.harvested);
  }

  /** Drops every installed flow: the next packet of each goes through JS (and the policy gate) again. */
  clear(): void {
    native.fastPathClear();
  }
}
