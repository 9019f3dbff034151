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
  /** Opens /dev/net/tun (O_NONBLOCK|O_CLOEXEC) as IFF_TUN|IFF_NO_PI plus `flags` (TunFlags). Name ≤ 15 bytes. */
  openTun(name: string, flags: number): TunHandle;
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
  /** Non-blocking IPv4 UDP socket bound to bindAddr:port (0 = any); bufBytes sets SO_RCVBUF/SO_SNDBUF (0 = defaults). Returns the fd. */
  udpOpen(bindAddr: number, port: number, bufBytes: number): number;
  udpLocalPort(fd: number): number;
  /**
   * One recvmmsg(MSG_DONTWAIT) of up to min(count, 1024) datagrams; datagram i
   * lands at buf[offsets[i]] with its size in lengths[i] — or -1 if it was
   * longer than maxLen (truncated: drop and count it) — and its sender in
   * addrs[i]:ports[i]. Returns the number received, 0 if none.
   */
  recvBatch(
    fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, maxLen: number,
    addrs: Uint32Array, ports: Uint16Array, count: number,
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
  'openTun', 'closeFd', 'readBatch', 'writeBatch', 'udpOpen', 'udpLocalPort', 'recvBatch', 'sendBatch',
  'Poller', 'checksum', 'ipv4HeaderChecksum', 'l4Checksum', 'incrementalUpdate',
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
