// Typed face of the C++ addon (native/*.cc, built by node-gyp into
// build/Release/sluice.node). One JS↔native crossing per batch: callers
// preallocate the batch arrays once and reuse them; the addon allocates no JS
// objects per packet.
//
// Conventions:
// - IPv4 addresses are uint32 in host order (10.0.0.1 = 0x0a000001), ports
//   are host order.
// - A "batch" is one Buffer plus per-packet Int32Array offsets/lengths (and
//   Uint32Array addrs / Uint16Array ports for UDP); slot i is packet i.
// - Failed system calls throw a NativeSystemError (code/errno/syscall);
//   bad arguments throw TypeError (code ERR_INVALID_ARG_TYPE) or RangeError
//   (code ERR_OUT_OF_RANGE) naming the function, the argument and the index.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Thrown by a failed system call, shaped like Node's own system errors. */
export interface NativeSystemError extends Error {
  /** Symbolic errno name: 'EPERM', 'EBADF', 'EBADFD', ... */
  code: string;
  /** Negative errno, as in Node/libuv system errors (EPERM → -1). */
  errno: number;
  /** The failing call: 'open', 'ioctl', 'read', 'write', 'recvmmsg', 'sendmmsg', 'uv_poll', ... */
  syscall: string;
}

/** `flags` bits for openTun. */
export const TunFlags = {
  /** IFF_MULTI_QUEUE: several fds (queues) may attach to one device name. */
  MultiQueue: 1,
  /** IFF_VNET_HDR: every packet read/written is prefixed by a virtio_net_hdr. */
  VnetHdr: 2,
} as const;

/** `offloads` bits for tunSetOffload: the kernel's TUN_F_* flags. */
export const TunOffload = {
  /** TUN_F_CSUM: packets may arrive with a partial checksum (finished by readBatchVnet). */
  Csum: 0x01,
  /** TUN_F_TSO4 / TUN_F_TSO6: TCP super-packets (up to 64 KiB) arrive whole. Need Csum. */
  Tso4: 0x02,
  Tso6: 0x04,
} as const;

/** fastPathAttach `kind`. */
export const FastPathKind = { TunPlain: 1, TunVnet: 2, Udp: 3 } as const;
/** fastPathAttach `flags`. */
export const FastPathAttach = { UdpGso: 1, UdpGro: 2 } as const;
/** fastPathInstall `flags`. */
export const FastPathOut = { ToPeer: 1, Vnet: 2 } as const;

/** Process-wide fast-path counters (native/fastpath.cc). */
export interface FastPathStats {
  /** Live (unexpired) entries. */
  entries: number;
  installs: number;
  /** Packets forwarded natively. */
  hits: number;
  /** Packets of flows without a live entry. */
  misses: number;
  /** Packets left to the JS pipeline (misses and packets the fast path is not sure about). */
  toJs: number;
  evictions: number;
  /** Packets forwarded natively that the kernel refused. */
  txDrops: number;
  /** Misses of native datapath threads dropped because their ring to JS was full. */
  ringDrops: number;
  /** The same per datapath thread (index 0: the JS thread), as datapathThreadStats returns them. */
  perThread: DatapathThreadStats[];
}

/** Per-thread fast-path counters (datapathThreadStats; index 0 is the JS thread). */
export interface DatapathThreadStats {
  hits: number;
  misses: number;
  toJs: number;
  txDrops: number;
  ringDrops: number;
  /** Times the thread woke the JS thread for its misses. */
  wakeups: number;
  /** Polls that found packets while the thread was busy polling (always 0 without --busy-poll). */
  busyPollHits: number;
  /** Packets (datagrams) the thread's fast path read, whether forwarded natively or left to JS. */
  rxPackets: number;
  /** Packets the thread's fast path sent. */
  txPackets: number;
}

/**
 * What the native fast path (every thread) forwarded to and received from one peer, by its
 * underlay address:port. Packets count segments of super-packets; bytes are inner IP bytes as the
 * segments carry them (overlay header not included). The JS pipeline counts its own packets.
 */
export interface FastPathPeerStats {
  /** Underlay IPv4 address (host order) and UDP port of the peer. */
  addr: number;
  port: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

/** udpOpen `flags`. */
export const UdpOpenFlags = {
  /** SO_REUSEPORT before bind: one socket per datapath thread on the same address:port. */
  ReusePort: 1,
} as const;

/** Process-wide offload counters of the addon (see native/tcp-gso.h). */
export interface OffloadStats {
  /** TCP super-packets read from TUNs. */
  tunGsoRead: number;
  /** TUN reads dropped: a virtio header the addon cannot honour. */
  tunBadVnet: number;
  /** Segments cut from super-packets (UDP sends, TUNs without offload). */
  gsoSegments: number;
  /** Messages sent with UDP_SEGMENT (each a train of datagrams). */
  udpGsoSends: number;
  /** 1 once the kernel refused UDP_SEGMENT (EIO): sends go datagram by datagram. */
  udpGsoDisabled: number;
  /** Received datagrams that were UDP_GRO trains. */
  groMessages: number;
  /** TCP segments appended to a super-packet by groCoalesce. */
  groMerged: number;
  /** Segments left unmerged because their TCP checksum failed. */
  groBadChecksum: number;
  /** Super-packets groCoalesce produced. */
  groSuperPackets: number;
}

export interface TunHandle {
  fd: number;
  /** The name the kernel chose (resolves '' and 'x%d' patterns). */
  name: string;
}

/**
 * Calls `onReadable` on the JS thread whenever the fd is readable, while
 * started. A started poller keeps the event loop (and itself) alive.
 * If the poll fails (e.g. the fd was closed underneath it), the poller is
 * stopped and `onReadable` is called once with the error. An exception thrown
 * by `onReadable` surfaces as 'uncaughtException'.
 * Close the poller before closing its fd: a closed fd number may be reused.
 */
export interface Poller {
  /** Idempotent. Throws code ERR_POLLER_CLOSED after close(). */
  start(): void;
  /** Idempotent; no-op after close(). */
  stop(): void;
  /** Stops and releases the uv handle. Idempotent. Does not close the fd. */
  close(): void;
}

export interface PollerConstructor {
  new (fd: number, onReadable: (error?: NativeSystemError) => void): Poller;
  readonly prototype: Poller;
}

export interface NativeBinding {
  /**
   * Opens /dev/net/tun (O_NONBLOCK|O_CLOEXEC) as IFF_TUN|IFF_NO_PI plus `flags` (TunFlags) and attaches it
   * to the device `name` (≤ 15 bytes), creating it if absent. With `netns` (a path, e.g. /var/run/netns/NAME)
   * the device is looked up or created in that namespace (setns: needs CAP_SYS_ADMIN).
   */
  openTun(name: string, flags: number, netns?: string): TunHandle;
  /** TUNSETPERSIST: the device outlives its fds (on = 1) or goes with the last one (on = 0). */
  tunSetPersist(fd: number, on: 0 | 1): void;
  closeFd(fd: number): void;
  /**
   * Reads up to `count` packets, packet i into buf[offsets[i], +maxLen) with
   * its size in lengths[i], until EAGAIN. Returns the number read (0 if none).
   * Longer packets are truncated by the kernel, so maxLen must cover the MTU.
   * Throws an error only if nothing was read; otherwise it recurs next call.
   * RangeError if some offsets[i] + maxLen (i < count) falls outside buf.
   */
  readBatch(fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, maxLen: number, count: number): number;
  /**
   * Writes packets 0..count-1 (buf[offsets[i], +lengths[i])). Returns n, the
   * number of packets consumed from the front of the batch:
   * - EAGAIN/ENOBUFS stop the batch early: packets n..count-1 were not tried;
   * - a packet the kernel rejects is skipped and marked lengths[i] = -errno
   *   (i < n), so: written = n minus the negative lengths; count those as drops;
   * - EBADF/EBADFD/EFAULT throw if nothing was consumed, else end the batch.
   */
  writeBatch(fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, count: number): number;
  /**
   * TUNSETVNETHDRSZ(10) + TUNSETOFFLOAD(`offloads`, TunOffload bits) on a TUN
   * opened with TunFlags.VnetHdr. Throws the kernel's refusal (EINVAL): the
   * caller falls back to no offloads.
   */
  tunSetOffload(fd: number, offloads: number): void;
  /**
   * readBatch for a TunFlags.VnetHdr TUN. Each packet's 10-byte virtio header
   * is read into the 10 bytes before offsets[i] (offsets[i] >= 10); the packet
   * lands at offsets[i]. gso[i] = MSS for a TCP super-packet (checksum
   * partial: the segments get theirs when cut), else 0 (a partial checksum
   * was finished). Packets with a header the addon cannot honour are dropped
   * and counted (offloadStats().tunBadVnet).
   */
  readBatchVnet(
    fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, gso: Int32Array, maxLen: number, count: number,
  ): number;
  /**
   * writeBatch for packets with GSO meta (gso[i] = MSS of a TCP super-packet,
   * else 0). vnet 1: the TUN has a virtio header (super-packets go whole,
   * ordinary ones with a zero header); vnet 0: super-packets are cut into
   * segments here. Same return contract as writeBatch; a super-packet that is
   * not well-formed TCP is marked -EINVAL.
   */
  writeBatchGso(
    fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, gso: Int32Array, count: number, vnet: 0 | 1,
  ): number;
  /**
   * Non-blocking IPv4 UDP socket bound to bindAddr:port (0 = any); bufBytes sets SO_RCVBUF/SO_SNDBUF (0 = defaults);
   * flags: UdpOpenFlags (default 0). Returns the fd.
   */
  udpOpen(bindAddr: number, port: number, bufBytes: number, flags?: number): number;
  udpLocalPort(fd: number): number;
  /**
   * One recvmmsg(MSG_DONTWAIT) of up to min(count, 1024) datagrams; datagram i
   * lands at buf[offsets[i]] with its size in lengths[i] — or -1 if it was
   * longer than maxLen (truncated: drop and count it) — and its sender in
   * addrs[i]:ports[i]. Returns the number received, 0 if none.
   * With `gso` on a socket with UDP_GRO (udpSetGro): gso[i] = the size of the
   * datagrams that datagram i is a train of (the last may be shorter), else 0.
   */
  recvBatch(
    fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, maxLen: number,
    addrs: Uint32Array, ports: Uint16Array, count: number, gso?: Int32Array,
  ): number;
  /**
   * sendmmsg of datagram i (buf[offsets[i], +lengths[i])) to addrs[i]:ports[i]
   * for i < count. Same return contract as writeBatch (rejected datagrams,
   * e.g. EMSGSIZE or port 0 → EINVAL, are marked lengths[i] = -errno).
   */
  sendBatch(
    fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array,
    addrs: Uint32Array, ports: Uint16Array, count: number,
  ): number;
  /**
   * sendBatch with offloads. Datagram i is `prefixLen` bytes of overlay header
   * then an IP packet; gso[i] = MSS marks a TCP super-packet, sent as
   * segments of gso[i] payload bytes, each behind a copy of the prefix, with
   * IP/TCP headers and checksums fixed per segment. useGso 1: trains of
   * segments — and of consecutive equal-sized datagrams to one peer — go as
   * one UDP_SEGMENT message (wire format unchanged: the kernel emits the
   * datagrams), until the kernel refuses it (EIO; then per datagram for
   * good). Same return contract as sendBatch; a malformed super-packet is
   * marked -EINVAL.
   */
  sendBatchGso(
    fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    gso: Int32Array, count: number, prefixLen: number, useGso: 0 | 1,
  ): number;
  /** setsockopt(SOL_UDP, UDP_GRO, on). Throws the kernel's refusal. */
  udpSetGro(fd: number, on: 0 | 1): void;
  /** Whether the kernel knows UDP_SEGMENT and has not refused it since. */
  udpGsoSupported(fd: number): boolean;
  /**
   * Coalesces the TCP segments of `count` received datagrams (trains of
   * gso[i]-byte datagrams when gso[i] > 0; each `prefixLen` bytes of overlay
   * header then an IP packet; slot room maxLen) into super-packets, in place.
   * Writes np packets in arrival order — packet p at buf[outOffsets[p],
   * +outLengths[p]) (prefix included), from datagram outSlots[p], a TCP
   * super-packet with a partial checksum when outGso[p] (= MSS) > 0 — and
   * returns np. Negative lengths pass through. Output capacity >= 128 * count
   * never drops.
   */
  groCoalesce(
    buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, gso: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    count: number, maxLen: number, prefixLen: number,
    outOffsets: Int32Array, outLengths: Int32Array, outGso: Int32Array, outSlots: Int32Array,
  ): number;
  /** SCHED_FIFO at `priority` (1..99) for the calling (JS) thread, or SCHED_OTHER for 0. Throws EPERM without CAP_SYS_NICE. */
  setRealtime(priority: number): void;
  /** malloc_trim(0) on libuv's thread pool: returns the C heap's free pages (every arena) to the kernel; true if any were. */
  mallocTrim(): Promise<boolean>;
  /**
   * Registers the native fast path on `fd`: from now on its Poller first reads a batch into this
   * memory natively and forwards the packets of flows with a live entry; it calls JS only when
   * some are left, their indices in pending[1..pending[0]] (slots; for a UDP port with UDP_GRO,
   * packets in the c* arrays, as groCoalesce writes them). kind: FastPathKind. flags:
   * FastPathAttach. The arrays are held (kept alive) until fastPathForget(fd).
   */
  fastPathAttach(
    fd: number, kind: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, gso: Int32Array,
    addrs: Uint32Array, ports: Uint16Array, count: number, maxLen: number, pending: Int32Array, prefixLen: number,
    flags: number, cOffsets?: Int32Array, cLengths?: Int32Array, cGso?: Int32Array, cSlots?: Int32Array,
  ): void;
  /**
   * After the JS pipeline forwarded the IPv4 packet buf[ipOff, +ipLen] that came in on ingressFd
   * (from outerAddr:outerPort, with the overlay header buf[prefixOff, +prefixLen], for the
   * underlay): forward its flow natively to outFd for ttlMs. flags FastPathOut.ToPeer: outFd is
   * the underlay socket, buf[prefixOff, +prefixLen] the overlay header written, peerAddr:peerPort
   * the destination; FastPathOut.Vnet: outFd is a TUN with a virtio header. `mtu` bounds packets
   * and segments. False for packets the fast path does not handle (then nothing is installed).
   * `harvest` (2 elements) receives the packets and bytes the flow's previous entry forwarded
   * natively (a packet or super-packet counts once; bytes are IP bytes), 0 and 0 if none.
   */
  fastPathInstall(
    buf: Uint8Array, ipOff: number, ipLen: number, prefixOff: number, prefixLen: number, ingressFd: number,
    outerAddr: number, outerPort: number, outFd: number, flags: number, mtu: number, peerAddr: number, peerPort: number,
    ttlMs: number, harvest?: Float64Array,
  ): boolean;
  /**
   * Before closing fd: drops its port (on every datapath thread; for an endpoint's queue 0 also its
   * other queues' ports), its counters and every entry in or out through it. When it returns, no
   * datapath thread uses fd.
   */
  fastPathForget(fd: number): void;
  /** Drops every entry (e.g. after a policy change): flows go through JS again. */
  fastPathClear(): void;
  /** Counters summed over every datapath thread. */
  fastPathStats(): FastPathStats;
  /**
   * Packets the fast path read from / wrote to fd, on every thread: for an endpoint's queue 0 with its
   * other queues, for the main underlay socket with the other threads' sockets.
   */
  fastPathFdStats(fd: number): { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number };
  /** Per-peer counters of the native fast path (allocates: for /metrics, not per batch). */
  fastPathPeerStats(): FastPathPeerStats[];
  /**
   * Starts datapath threads 1..threads-1 (none for 1): each blocks in epoll_wait over the fds attached
   * to it (datapathAttach; with busyPollUs, after polling that long since its last packet) and runs the fast path on them at once, with its own batch memory (`count`
   * packets of up to maxLen after 64 bytes of headroom). Their misses are queued in a ring of
   * ringBytes per thread (full: dropped, counted as ringDrops) and onMisses() is called on the JS
   * thread to drain them (datapathDrain). flags: FastPathAttach (UdpGso, UdpGro: how the sockets
   * attached are used), plus 4: decided flows are written to TUN queues 1..n-1 only (the JS thread
   * keeps the slow path). realtime 1..99: SCHED_FIFO for the threads. Returns 0, or the errno of the
   * refusal of SCHED_FIFO (the threads run anyway). busyPollUs > 0: a thread polls without sleeping
   * for that long after each packet. Throws ERR_DATAPATH_RUNNING if already started.
   */
  datapathStart(threads: number, onMisses: () => void, count: number, maxLen: number, prefixLen: number, flags: number,
    ringBytes: number, realtime: number, busyPollUs: number): number;
  /** Stops and joins the datapath threads (idempotent); the fds attached stay open. */
  datapathStop(): void;
  /**
   * Thread `thread` (1..threads-1) polls fd: kind FastPathKind.TunPlain/TunVnet, a queue of the
   * endpoint whose queue 0 is keyFd (flows are keyed by keyFd); FastPathKind.Udp, a socket of the
   * SO_REUSEPORT group of the main underlay socket keyFd. Undone by fastPathForget(fd or keyFd).
   */
  datapathAttach(thread: number, fd: number, kind: number, keyFd: number): void;
  /**
   * Moves up to `count` misses of the datapath threads into slots 0..n-1 of a batch and returns n:
   * packet i at buf[offsets[i], +lengths[i]) (-1: a truncated datagram), from fds[i] (an endpoint's
   * queue 0, or the main underlay socket: then an overlay datagram from addrs[i]:ports[i]),
   * gso[i] = MSS of a TCP super-packet, else 0. n < count: the rings are empty (onMisses is called
   * again for the next miss); n === count: call again. dropped[0] (if given) receives the misses the
   * full rings dropped since the previous drain.
   */
  datapathDrain(buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, gso: Int32Array, addrs: Uint32Array,
    ports: Uint16Array, fds: Int32Array, count: number, maxLen: number, dropped?: Float64Array): number;
  /** Per-thread counters, index 0 the JS thread. */
  datapathThreadStats(): DatapathThreadStats[];
  /**
   * Steers the datagrams of fd's SO_REUSEPORT group to sockets first..sockets-1 (in bind order; first
   * default 0) by a symmetric hash of the inner IPv4 packet behind prefixLen bytes of overlay header
   * (classic BPF, SO_ATTACH_REUSEPORT_CBPF), so a flow lands on the same thread index on both hosts.
   * The kernel does not run it for UDP_GRO-merged trains (they go by its own hash).
   */
  udpSetSteering(fd: number, prefixLen: number, sockets: number, first?: number): void;
  /** The addon's process-wide offload counters (allocates: for stats, not per batch). */
  offloadStats(): OffloadStats;
  Poller: PollerConstructor;
  /** sum16 of src/packet/checksum.ts: folded one's-complement sum plus `initial` (default 0), not inverted. */
  checksum(buf: Uint8Array, off: number, len: number, initial?: number): number;
  /** The IPv4 header checksum (field treated as zero). RangeError if IHL < 5 or the header exceeds buf. */
  ipv4HeaderChecksum(buf: Uint8Array, off: number): number;
  /** TCP/UDP/ICMPv6 checksum with the IPv4/IPv6 pseudo-header of the packet at ipOff (field at l4off+csumOff treated as zero). */
  l4Checksum(buf: Uint8Array, ipOff: number, l4off: number, len: number, proto: number, csumOff: number): number;
  /** RFC 1624 eqn. 3: the checksum after a 16-bit word changes from oldWord to newWord. */
  incrementalUpdate(csum: number, oldWord: number, newWord: number): number;
}

const EXPORTS: readonly (keyof NativeBinding)[] = [
  'openTun', 'tunSetPersist', 'closeFd', 'readBatch', 'writeBatch', 'udpOpen', 'udpLocalPort', 'recvBatch', 'sendBatch',
  'Poller', 'checksum', 'ipv4HeaderChecksum', 'l4Checksum', 'incrementalUpdate',
  'tunSetOffload', 'readBatchVnet', 'writeBatchGso', 'sendBatchGso', 'udpSetGro', 'udpGsoSupported', 'groCoalesce',
  'offloadStats', 'setRealtime', 'mallocTrim', 'fastPathAttach', 'fastPathInstall', 'fastPathForget', 'fastPathClear',
  'fastPathStats', 'fastPathFdStats', 'fastPathPeerStats', 'datapathStart', 'datapathStop', 'datapathAttach',
  'datapathDrain', 'datapathThreadStats', 'udpSetSteering',
];

/** The package root: the nearest ancestor of this module holding package.json (works from src/ and dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`sluice: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

function load(): NativeBinding {
  const path = join(packageRoot(), 'build', 'Release', 'sluice.node');
  if (!existsSync(path)) {
    throw new Error(`sluice: native addon not found at ${path}; build it with \`npm install\` or \`npx node-gyp rebuild\``);
  }
  const addon: unknown = createRequire(import.meta.url)(path);
  const missing = EXPORTS.filter((k) => typeof (addon as Record<string, unknown>)[k] !== 'function');
  if (missing.length > 0) {
    throw new Error(`sluice: native addon at ${path} lacks ${missing.join(', ')}; rebuild it with \`npx node-gyp rebuild\``);
  }
  return addon as NativeBinding;
}

export const native: NativeBinding = load();

// Named re-exports, for `import { readBatch } from '../native/binding.js'`.
// The native functions do not use `this`, so detaching them is safe.
export const {
  openTun, closeFd, readBatch, writeBatch, udpOpen, udpLocalPort, recvBatch, sendBatch,
  checksum, ipv4HeaderChecksum, l4Checksum, incrementalUpdate,
} = native;
export const Poller: PollerConstructor = native.Poller;

/** True for errors thrown by failed system calls in the addon (or Node's own). */
export function isNativeSystemError(e: unknown): e is NativeSystemError {
  return e instanceof Error && typeof (e as Partial<NativeSystemError>).code === 'string' &&
    typeof (e as Partial<NativeSystemError>).errno === 'number' &&
    typeof (e as Partial<NativeSystemError>).syscall === 'string';
}
