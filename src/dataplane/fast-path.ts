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
// Environment: SLUICE_FASTPATH=off turns it off; SLUICE_FASTPATH_TTL_MS (default 5000) sets ttlMs.
import { FastPathAttach, FastPathKind, FastPathOut, native } from '../native/binding.js';
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

export class FastPath {
  /** Misses of the last native poll of an endpoint TUN: [count, slot...] into the TUN batch. */
  readonly tunPending: Int32Array;
  /** Misses of the last native poll of the underlay: [count, index...] (coalesced packets with GRO, else slots). */
  readonly udpPending: Int32Array;
  readonly #ttlMs: number;
  readonly #tunBatch: PacketBatch;
  readonly #useGso: boolean;

  constructor(o: FastPathOptions, udpFd: number, udpBatch: PacketBatch, rx: CoalescedPackets | null, tunBatch: PacketBatch,
    prefixLen: number, useGso: boolean) {
    this.#ttlMs = o.ttlMs;
    this.#tunBatch = tunBatch;
    this.#useGso = useGso;
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
  }

  /** Lets the endpoint's Poller forward decided flows natively (once per endpoint; undone by Endpoint.close). */
  attach(ep: Endpoint): void {
    if (ep.fastPath || ep.fd < 0) return;
    const b = this.#tunBatch;
    native.fastPathAttach(ep.fd, ep.vnet ? FastPathKind.TunVnet : FastPathKind.TunPlain, b.buf, b.offsets, b.lengths, b.gso,
      b.addrs, b.ports, b.size, b.maxLen, this.tunPending, 0, this.#useGso ? FastPathAttach.UdpGso : 0);
    ep.fastPath = true;
  }

  /** The packet at buf[off, +len], from ingressFd, went to a peer behind the overlay header at buf[start, off). */
  installToPeer(buf: Buffer, off: number, len: number, start: number, ingressFd: number, udpFd: number, mtu: number,
    peerAddr: number, peerPort: number): void {
    native.fastPathInstall(buf, off, len, start, off - start, ingressFd, 0, 0, udpFd, FastPathOut.ToPeer, mtu, peerAddr, peerPort,
      this.#ttlMs);
  }

  /**
   * The packet at buf[off, +len] went to a local endpoint. It came in on ingressFd: an endpoint's TUN
   * (outerAddr 0), or the underlay from outerAddr:outerPort with the overlay header buf[prefixOff, off).
   */
  installToEndpoint(buf: Buffer, off: number, len: number, prefixOff: number, ingressFd: number, outerAddr: number,
    outerPort: number, to: Endpoint): void {
    native.fastPathInstall(buf, off, len, prefixOff, off - prefixOff, ingressFd, outerAddr, outerPort, to.fd,
      to.vnet ? FastPathOut.Vnet : 0, to.mtu, 0, 0, this.#ttlMs);
  }

  /** Drops every installed flow: the next packet of each goes through JS (and the policy gate) again. */
  clear(): void {
    native.fastPathClear();
  }
}
