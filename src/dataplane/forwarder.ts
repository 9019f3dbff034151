// Forwarding, one batch at a time. Each readable fd is drained in batches; each
// packet of a batch is decided and queued on its output; at the end of the
// batch every output is flushed with one native call.
//
// Outbound, from a workload's TUN:
//   1 TUN read batch  2 parse  3 anti-spoof (source = the endpoint's address)
//   4 route: local endpoint | peer subnet | ICMP unreachable
//   5 TTL (ICMP time exceeded) and MTU (ICMP frag needed / packet too big)
//   6 policy gate  7 local: queue on the endpoint's TUN; remote: encapsulate in
//   place and queue on the UDP socket  8 flush
// Inbound, from the overlay:
//   1 recvmmsg batch  2 known peer  3 decap (VNI, MAC)  4 parse
//   5 inner source inside the peer's subnet  6 route to a local endpoint
//   7 TTL / MTU  8 policy gate  9 queue on the endpoint's TUN  10 flush
import { native } from '../native/binding.js';
import { Drop, DropCounters } from '../packet/drop.js';
import { FlowKey } from '../packet/flow-key.js';
import { FlowKeyParser } from '../packet/flow-key-parser.js';
import { icmp4DestUnreachable, icmp4FragNeeded, icmp4TimeExceeded, icmp6DestUnreachable, icmp6PacketTooBig,
  icmp6TimeExceeded } from '../packet/icmp-errors.js';
import { Icmp4Unreach, Icmp6Unreach } from '../packet/icmp.js';
import { isIpv4Multicast } from '../packet/ipv4.js';
import { isIpv6MulticastWord0 } from '../packet/ipv6.js';
import type { OverlayBackend, OverlayLocal } from '../overlay/backend.js';
import type { Peer } from '../overlay/peer-table.js';
import type { Endpoint } from './endpoint.js';
import type { PacketBatch } from './packet-batch.js';
import { Verdict, type PolicyGate } from './policy-gate.js';
import type { Router } from './router.js';
import { TxQueue } from './tx-queue.js';

/** Batches drained per readiness callback before yielding to other fds. */
const BATCHES_PER_WAKEUP = 8;

const IcmpError = { Unreachable: 0, TooBig: 1, TimeExceeded: 2 } as const;
type IcmpError = (typeof IcmpError)[keyof typeof IcmpError];

export interface ForwarderOptions {
  router: Router;
  backend: OverlayBackend;
  local: OverlayLocal;
  gate: PolicyGate;
  udpFd: number;
  tunBatch: PacketBatch;
  udpBatch: PacketBatch;
  /** Largest inner packet the overlay carries: underlay MTU − backend overhead. */
  overlayMtu: number;
  /** Source of the ICMP errors we originate: our subnet's first address. */
  routerAddr4: number;
  routerAddr6: Buffer;
}

export class Forwarder {
  readonly drops = new DropCounters();
  readonly udpTx: TxQueue;
  udpRxPackets = 0;
  udpRxBytes = 0;
  gate: PolicyGate;
  readonly #o: ForwarderOptions;
  readonly #key = new FlowKey();
  readonly #parser = new FlowKeyParser();
  /** Separate parse state for the ICMP errors we make, so the packet they answer stays parsed. */
  readonly #errKey = new FlowKey();
  readonly #errParser = new FlowKeyParser();
  /** The batch being processed; every queued offset points into its buffer. */
  #batch: PacketBatch;
  readonly #dirty: Endpoint[] = [];
  #dirtyCount = 0;

  constructor(o: ForwarderOptions) {
    this.#o = o;
    this.gate = o.gate;
    this.#batch = o.tunBatch;
    this.udpTx = new TxQueue(Math.max(o.tunBatch.size, o.udpBatch.size) + o.tunBatch.spare + o.udpBatch.spare);
  }

  // --- outbound -------------------------------------------------------------

  /** Readiness callback of an endpoint's TUN fd. */
  onEndpointReadable(ep: Endpoint): void {
    const b = this.#o.tunBatch;
    for (let round = 0; round < BATCHES_PER_WAKEUP && ep.fd >= 0; round++) {
      const n = native.readBatch(ep.fd, b.buf, b.offsets, b.lengths, b.maxLen, b.size);
      if (n === 0) return;
      this.#begin(b);
      for (let i = 0; i < n; i++) this.#fromEndpoint(ep, b.offsets[i], b.lengths[i]);
      this.#flush();
      if (n < b.size) return;
    }
  }

  #fromEndpoint(ep: Endpoint, off: number, len: number): void {
    ep.rxPackets++;
    ep.rxBytes += len;
    const key = this.#key;
    const r = this.#parser.parse(this.#batch.buf, off, len, key);
    if (r !== Drop.None) {
      // A packet longer than the slot was cut short by the read: too big, not malformed.
      this.drops.count(len >= this.#batch.maxLen ? Drop.TooBig : r);
      return;
    }
    if (key.family === 4 ? isIpv4Multicast(key.dst0) || key.dst0 === -1 : isIpv6MulticastWord0(key.dst0)) {
      this.drops.count(Drop.NoRoute); // neighbour discovery, mDNS, broadcasts: nothing to route
      return;
    }
    const own = key.family === 4
      ? key.src0 === ep.ip4
      : ep.ip6 !== undefined && key.src0 === ep.ip6[0] && key.src1 === ep.ip6[1] && key.src2 === ep.ip6[2] && key.src3 === ep.ip6[3];
    if (!own) {
      this.drops.count(Drop.Spoofed);
      return;
    }
    this.#forward(off, this.#parser.ipLength, ep, null);
  }

  // --- inbound --------------------------------------------------------------

  /** Readiness callback of the underlay UDP socket. */
  onUnderlayReadable(): void {
    const b = this.#o.udpBatch;
    for (let round = 0; round < BATCHES_PER_WAKEUP; round++) {
      const n = native.recvBatch(this.#o.udpFd, b.buf, b.offsets, b.lengths, b.maxLen, b.addrs, b.ports, b.size);
      if (n === 0) return;
      this.#begin(b);
      for (let i = 0; i < n; i++) this.#fromUnderlay(b.offsets[i], b.lengths[i], b.addrs[i], b.ports[i]);
      this.#flush();
      if (n < b.size) return;
    }
  }

  #fromUnderlay(off: number, len: number, addr: number, port: number): void {
    if (len < 0) {
      this.drops.count(Drop.TooBig);
      return;
    }
    this.udpRxPackets++;
    this.udpRxBytes += len;
    const peer = this.#o.router.peers.lookupByUnderlay(addr, port);
    if (peer === null) {
      this.drops.count(Drop.UnknownPeer);
      return;
    }
    const inner = this.#o.backend.decap(this.#batch.buf, off, len, peer);
    if (inner < 0) {
      this.drops.count(-inner);
      return;
    }
    const key = this.#key;
    const r = this.#parser.parse(this.#batch.buf, inner, len - (inner - off), key);
    if (r !== Drop.None) {
      this.drops.count(r);
      return;
    }
    const fromPeer = key.family === 4 ? peer.containsSrc4(key.src0) : peer.contains6(key.src0, key.src1, key.src2, key.src3);
    if (!fromPeer) {
      this.drops.count(Drop.Spoofed);
      return;
    }
    this.#forward(inner, this.#parser.ipLength, null, peer);
  }

  // --- held packets, released by the policy gate -------------------------------

  /**
   * Forwards packets that the gate held while their flow's verdict was computed:
   * slots 0..count-1 of `batch`, packet i sent by local endpoint `from[i]` (or
   * by a peer, undefined). The gate now answers them from its flow cache.
   */
  reinject(batch: PacketBatch, count: number, from: readonly (Endpoint | undefined)[]): void {
    this.#begin(batch);
    const key = this.#key;
    for (let i = 0; i < count; i++) {
      const off = batch.offsets[i];
      if (this.#parser.parse(batch.buf, off, batch.lengths[i], key) !== Drop.None) continue;
      this.#forward(off, this.#parser.ipLength, from[i] ?? null, null);
    }
    this.#flush();
  }

  // --- shared: route, TTL, MTU, policy, queue ---------------------------------

  /** Forwards the packet parsed into #key/#parser. Packets from a peer go only to local endpoints. */
  #forward(off: number, len: number, from: Endpoint | null, fromPeer: Peer | null): void {
    const key = this.#key, p = this.#parser, router = this.#o.router;
    const v4 = key.family === 4;
    const to = v4 ? router.local4(key.dst0) : router.local6(key.dst0, key.dst1, key.dst2, key.dst3);
    let peer: Peer | null = null;
    if (to === undefined) {
      if (fromPeer === null) peer = v4 ? router.peer4(key.dst0) : router.peer6(key.dst0, key.dst1, key.dst2, key.dst3);
      if (peer === null) {
        this.drops.count(Drop.NoRoute);
        this.#icmpError(IcmpError.Unreachable, off, len, 0);
        return;
      }
    }
    if ((v4 ? p.ip4.ttl() : p.ip6.hopLimit()) <= 1) {
      this.drops.count(Drop.TtlExceeded);
      this.#icmpError(IcmpError.TimeExceeded, off, len, 0);
      return;
    }
    const mtu = to !== undefined ? to.mtu : this.#o.overlayMtu;
    if (len > mtu) {
      this.drops.count(Drop.TooBig);
      // We do not fragment: IPv4 without DF is dropped silently, as a router with fragmentation off would.
      if (!v4 || p.ip4.dontFragment()) this.#icmpError(IcmpError.TooBig, off, len, mtu);
      return;
    }
    const verdict = this.gate.decide(key, p, len, from ?? undefined, to);
    if (verdict !== Verdict.Allow) {
      if (verdict === Verdict.Deny) this.drops.count(Drop.PolicyDenied);
      return;
    }
    if (v4) p.ip4.decrementTtl();
    else p.ip6.decrementHopLimit();
    if (to !== undefined) this.#toEndpoint(to, off, len);
    else this.#toPeer(peer!, off, len);
  }

  #toEndpoint(to: Endpoint, off: number, len: number): void {
    if (to.tx.count === 0) this.#dirty[this.#dirtyCount++] = to;
    if (!to.tx.push(off, len)) this.drops.count(Drop.QueueFull);
  }

  #toPeer(peer: Peer, off: number, len: number): void {
    const start = this.#o.backend.encap(this.#batch.buf, off, len, peer, this.#o.local);
    if (start < 0) return this.drops.count(-start);
    if (!this.udpTx.push(start, len + (off - start), peer.underlayAddr, peer.port)) this.drops.count(Drop.QueueFull);
  }

  /** Answers the packet at `off` with an ICMP error, built in a spare slot and routed like any packet. */
  #icmpError(kind: IcmpError, off: number, len: number, mtu: number): void {
    const b = this.#batch, buf = b.buf, o = this.#o;
    const out = b.takeSpare();
    if (out < 0) return;
    const v4 = this.#key.family === 4;
    let n: number;
    switch (kind) {
      case IcmpError.Unreachable:
        n = v4 ? icmp4DestUnreachable(buf, out, buf, off, len, Icmp4Unreach.Host, o.routerAddr4)
          : icmp6DestUnreachable(buf, out, buf, off, len, Icmp6Unreach.NoRoute, o.routerAddr6);
        break;
      case IcmpError.TooBig:
        n = v4 ? icmp4FragNeeded(buf, out, buf, off, len, mtu, o.routerAddr4)
          : icmp6PacketTooBig(buf, out, buf, off, len, mtu, o.routerAddr6);
        break;
      case IcmpError.TimeExceeded:
        n = v4 ? icmp4TimeExceeded(buf, out, buf, off, len, o.routerAddr4)
          : icmp6TimeExceeded(buf, out, buf, off, len, o.routerAddr6);
        break;
    }
    if (n === 0) return;
    const k = this.#errKey;
    if (this.#errParser.parse(buf, out, n, k) !== Drop.None) return;
    const router = o.router;
    const to = k.family === 4 ? router.local4(k.dst0) : router.local6(k.dst0, k.dst1, k.dst2, k.dst3);
    if (to !== undefined) return this.#toEndpoint(to, out, n);
    const peer = k.family === 4 ? router.peer4(k.dst0) : router.peer6(k.dst0, k.dst1, k.dst2, k.dst3);
    if (peer !== null) this.#toPeer(peer, out, n);
  }

  // --- batch bookkeeping -----------------------------------------------------

  #begin(b: PacketBatch): void {
    this.#batch = b;
    b.beginBatch();
  }

  /** One native write per endpoint that received packets, one sendmmsg for the overlay. */
  #flush(): void {
    const buf = this.#batch.buf;
    for (let i = 0; i < this.#dirtyCount; i++) {
      const ep = this.#dirty[i];
      if (ep.fd >= 0) this.drops.count(Drop.QueueFull, ep.tx.flushTun(ep.fd, buf));
      else ep.tx.count = 0;
      this.#dirty[i] = undefined!;
    }
    this.#dirtyCount = 0;
    this.drops.count(Drop.QueueFull, this.udpTx.flushUdp(this.#o.udpFd, buf));
    this.gate.endBatch?.();
  }
}
