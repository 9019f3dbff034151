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
//
// Super-packets (offloads.ts): with TSO on a TUN, step 1 yields TCP
// super-packets of up to 64 KiB (gso = MSS); with GRO, step 1 inbound is
// followed by coalescing the batch's TCP segments into super-packets. A
// super-packet is ONE packet to every step above — parsed, routed, TTL'd and
// offered to the policy gate once — and its segments must fit the MTU. The
// flush cuts it into segments only where it must: UDP_SEGMENT trains on the
// underlay, whole (virtio GSO header) into an offloading TUN.
//
// Fast path (fast-path.ts): after a packet of an IPv4 TCP/UDP/ICMP-echo flow
// was forwarded here, its flow is installed in the addon, whose poll callback
// then forwards the flow's next packets without calling JS for a while (the
// TTL); the misses of such a native poll arrive here as `pending` packets,
// which are forwarded first, exactly as read ones are.
import { isNativeSystemError, native } from '../native/binding.js';
import { Drop, DropCounters } from '../packet/drop.js';
import { FlowKey } from '../packet/flow-key.js';
import { FlowKeyParser, Fragment } from '../packet/flow-key-parser.js';
import { icmp4DestUnreachable, icmp4FragNeeded, icmp4TimeExceeded, icmp6DestUnreachable, icmp6PacketTooBig,
  icmp6TimeExceeded } from '../packet/icmp-errors.js';
import { Icmp4Unreach, Icmp6Unreach } from '../packet/icmp.js';
import { isIpv4Multicast } from '../packet/ipv4.js';
import { isIpv6MulticastWord0 } from '../packet/ipv6.js';
import type { OverlayBackend, OverlayLocal } from '../overlay/backend.js';
import type { Peer } from '../overlay/peer-table.js';
import type { Endpoint } from './endpoint.js';
import { ALL_OFFLOADS, type Offloads } from './offloads.js';
import { applyRealtime, realtimeFromEnv } from './scheduling.js';
import { DEFAULT_FAST_PATH, FastPath, datapathMainFromEnv, fastPathFromEnv, type FastPathOptions } from './fast-path.js';
import { CoalescedPackets, PacketBatch } from './packet-batch.js';
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
  /** Underlay offloads to try (default: all; the kernel may refuse some, see Forwarder.offloads). */
  offloads?: Offloads;
  /** SCHED_FIFO priority for the data path (this) thread, 0 = normal; default SLUICE_REALTIME or 0. */
  realtime?: number;
  /** With datapathThreads > 1: µs the native threads keep polling after a packet (busy polling; default 0). */
  busyPollUs?: number;
  /** The native fast path, null = off; default from SLUICE_FASTPATH / SLUICE_FASTPATH_TTL_MS (on, 5 s). */
  fastPath?: FastPathOptions | null;
  /**
   * Datapath threads in all (default 1: this thread only). With n > 1, n - 1 native threads run the fast
   * path on the endpoints' other TUN queues and on their own underlay sockets (fast-path.ts); the
   * underlay socket must then have been opened with SO_REUSEPORT, and `underlay` says how to open the
   * others. With the fast path off the threads still read their queues: every packet is then a miss.
   */
  datapathThreads?: number;
  /** Bind address (host order), port and socket buffer size of the underlay socket (for datapathThreads > 1). */
  underlay?: { addr: number; port: number; bufBytes: number };
  /**
   * With datapathThreads > 1: false keeps decided flows off the JS thread, which then only does the
   * slow path (default: SLUICE_DATAPATH_MAIN, else true).
   */
  datapathMain?: boolean;
}

/** IP protocol number of TCP. */
const TCP = 6;
/** How often the gate's and the router's generations are checked while traffic may bypass JS (fast path). */
const GATE_WATCH_MS = 25;
/** After a policy change, nothing is installed in the fast path for this long: revalidation settles first. */
const FAST_PATH_GRACE_MS = 1000;

export class Forwarder {
  readonly drops = new DropCounters();
  readonly udpTx: TxQueue;
  #udpRxPackets = 0;
  #udpRxBytes = 0;
  gate: PolicyGate;
  /** The native fast path, or null when off. */
  readonly fastPath: FastPath | null;
  /** The underlay offloads in effect (`tun` is per endpoint: Endpoint.vnet/tso). */
  readonly offloads: Offloads;
  /** Why an offload or the real-time priority asked for is off (the kernel's refusal), for the log. */
  readonly offloadErrors: string[] = [];
  readonly #busyPollUs: number;
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
  /** GSO meta of the packet being forwarded: its MSS if a TCP super-packet, 0 if not, -1: find out (reinjected). */
  #gso = 0;
  /** Packets of the UDP batch after coalescing (GRO on), else null. */
  readonly #rx: CoalescedPackets | null;
  readonly #prefixLen: number;
  // Where the packet being forwarded came in, for fast-path installs: an endpoint's or the
  // underlay's fd (-1: do not install — reinjected packets, our ICMP errors), the underlay
  // sender and the offset of the overlay header.
  #inFd = -1;
  #inAddr = 0;
  #inPort = 0;
  #inPrefixOff = 0;
  // The gate and generation the fast path's flows were decided under (see #watchGate).
  #gateSeen: PolicyGate | null = null;
  #gateGeneration: number | undefined = undefined;
  #routeGeneration = -1;
  #installAfter = 0;
  /** Forwarding misses of the datapath threads (onThreadMisses): send before installing. */
  #drainingThreads = false;
  /** False when the fast path is off but datapath threads run (their misses are all the traffic). */
  readonly #installs: boolean;
  /** Misses of the datapath threads, drained here, and the fd each came from. */
  readonly #threadBatch: PacketBatch | null = null;
  readonly #threadFds: Int32Array | null = null;
  #threadDrainQueued = false;
  readonly #ringDropped = new Float64Array(1);
  readonly #gateTimer: NodeJS.Timeout | undefined;

  constructor(o: ForwarderOptions) {
    this.#o = o;
    this.gate = o.gate;
    this.#batch = o.tunBatch;
    this.udpTx = new TxQueue(Math.max(o.tunBatch.size, o.udpBatch.size) + o.tunBatch.spare + o.udpBatch.spare);
    this.#prefixLen = o.backend.headroom;
    const want = o.offloads ?? ALL_OFFLOADS;
    let gso = want.gso && native.udpGsoSupported(o.udpFd);
    if (want.gso && !gso) this.offloadErrors.push('UDP_SEGMENT unsupported by the kernel');
    let gro = want.gro;
    if (gro) {
      try {
        native.udpSetGro(o.udpFd, 1);
      } catch (err) {
        gro = false;
        this.offloadErrors.push(`UDP_GRO refused (${isNativeSystemError(err) ? err.code : String(err)})`);
      }
    }
    if (this.#prefixLen > 64) gso = gro = false; // the addon copies at most 64 bytes of overlay header per segment
    this.offloads = { tun: want.tun, gso, gro };
    this.#rx = gro ? new CoalescedPackets(o.udpBatch.size) : null;
    const fp = o.fastPath === undefined ? fastPathFromEnv() : o.fastPath;
    const threads = o.datapathThreads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new RangeError(`datapathThreads: expected an integer 1..64, got ${String(o.datapathThreads)}`);
    }
    if (threads > 1 && o.underlay === undefined) throw new TypeError('datapathThreads > 1 needs `underlay` (to open the other sockets)');
    const busyPollUs = this.#busyPollUs = o.busyPollUs ?? 0;
    if (!Number.isInteger(busyPollUs) || busyPollUs < 0 || busyPollUs > 1_000_000) {
      throw new RangeError(`busyPollUs: expected an integer 0..1000000, got ${String(o.busyPollUs)}`);
    }
    // Only the native threads spin: the JS thread must get back to its event loop.
    if (busyPollUs > 0 && threads < 2) throw new RangeError('busyPollUs needs datapathThreads 2 or more (only the native threads busy-poll)');
    const realtime = o.realtime ?? realtimeFromEnv();
    // A SCHED_FIFO thread that spins yields to nobody below it: it would hold its CPU for the
    // whole busy-poll time after every packet, starving softirqs, the policy pool and V8's threads.
    if (busyPollUs > 0 && realtime > 0) {
      throw new RangeError(`busyPollUs cannot be combined with realtime (SCHED_FIFO ${realtime}): a real-time thread that spins starves the other tasks on its CPU`);
    }
    this.#installs = fp !== null;
    if (threads > 1) {
      this.#threadBatch = new PacketBatch(o.tunBatch.size, o.tunBatch.slotSize, o.tunBatch.spare);
      this.#threadFds = new Int32Array(o.tunBatch.size);
    }
    const dt = threads > 1
      ? { threads, bindAddr: o.underlay!.addr, port: o.underlay!.port, bufBytes: o.underlay!.bufBytes, gro, realtime, busyPollUs,
          mainFastPath: o.datapathMain ?? datapathMainFromEnv(), onMisses: () => this.onThreadMisses() }
      : undefined;
    this.fastPath = fp !== null || threads > 1
      ? new FastPath(fp ?? DEFAULT_FAST_PATH, o.udpFd, o.udpBatch, this.#rx, o.tunBatch, this.#prefixLen, gso, dt)
      : null;
    if (this.fastPath?.realtimeError) this.offloadErrors.push(this.fastPath.realtimeError);
    this.udpTx.countFd = o.udpFd;
    if (this.fastPath !== null) {
      this.#watchGate();
      this.#gateTimer = setInterval(() => this.#watchGate(), GATE_WATCH_MS).unref();
    }
    const rt = applyRealtime(realtime);
    if (rt) this.offloadErrors.push(rt);
  }

  /** µs the native threads busy-poll after a packet (0: off). */
  get busyPollUs(): number {
    return this.#busyPollUs;
  }

  /** Datapath threads in all (1: only this thread). */
  get datapathThreads(): number {
    return this.fastPath?.threads ?? 1;
  }

  /** Lets the fast path (and the datapath threads, on the endpoint's other queues) serve an endpoint at once. */
  attachEndpoint(ep: Endpoint): void {
    this.fastPath?.attach(ep);
  }

  /** Stops the datapath threads and closes their sockets (daemon stop; after the endpoints are closed). */
  close(): void {
    if (this.#gateTimer !== undefined) clearInterval(this.#gateTimer);
    this.fastPath?.close();
  }

  /**
   * Forgets every flow of the fast path (their next packets go through the gate again) and
   * installs none for a second. Called by itself when the gate or its generation changes.
   */
  flushFastPath(): void {
    if (this.fastPath === null) return;
    this.fastPath.clear();
    this.#installAfter = performance.now() + FAST_PATH_GRACE_MS;
  }

  /**
   * A new gate or policy generation, or new routes (endpoints, peers): flows the fast path
   * forwards were decided under what changed, so it forgets them (after a policy change it also
   * waits for revalidation to settle before installing again).
   */
  #watchGate(): void {
    const rg = this.#o.router.generation;
    if (rg !== this.#routeGeneration) {
      this.#routeGeneration = rg;
      this.fastPath!.clear();
    }
    const g = this.gate;
    if (g === this.#gateSeen && g.generation === this.#gateGeneration) return;
    if (this.#gateSeen !== null) this.flushFastPath();
    this.#gateSeen = g;
    this.#gateGeneration = g.generation;
  }

  /** Whether the packet being forwarded may install its flow in the fast path. */
  #mayInstall(): boolean {
    return this.#installs && this.fastPath !== null && this.#inFd >= 0 && this.#key.family === 4 &&
      (this.#installAfter === 0 || performance.now() >= this.#installAfter);
  }

  /** Datagrams received on the underlay (by the JS pipeline or the native fast path). */
  get udpRxPackets(): number {
    return this.#udpRxPackets + (this.fastPath ? native.fastPathFdStats(this.#o.udpFd).rxPackets : 0);
  }

  get udpRxBytes(): number {
    return this.#udpRxBytes + (this.fastPath ? native.fastPathFdStats(this.#o.udpFd).rxBytes : 0);
  }

  // --- outbound -------------------------------------------------------------

  /** Readiness callback of an endpoint's TUN fd. */
  onEndpointReadable(ep: Endpoint): void {
    const b = this.#o.tunBatch, fp = this.fastPath;
    if (fp !== null) {
      if (!ep.fastPath) fp.attach(ep);
      const pend = fp.tunPending, m = pend[0];
      if (m > 0) { // misses of the native poll that just ran: in the TUN batch's slots
        this.#begin(b);
        for (let k = 1; k <= m; k++) {
          const i = pend[k];
          this.#gso = ep.vnet ? b.gso[i] : 0;
          this.#fromEndpoint(ep, b.offsets[i], b.lengths[i]);
        }
        pend[0] = 0;
        this.#flush();
        return; // the next batch is the native poll's again (level-triggered: it comes at once)
      }
    }
    for (let round = 0; round < BATCHES_PER_WAKEUP && ep.fd >= 0; round++) {
      const vnet = ep.vnet;
      const n = vnet
        ? native.readBatchVnet(ep.fd, b.buf, b.offsets, b.lengths, b.gso, b.maxLen, b.size)
        : native.readBatch(ep.fd, b.buf, b.offsets, b.lengths, b.maxLen, b.size);
      if (n === 0) return;
      this.#begin(b);
      // A datapath thread may forward the flow's next packet the moment its entry is installed,
      // while this one still waits in a TX queue: installs here send what is queued first.
      this.#drainingThreads = true;
      for (let i = 0; i < n; i++) {
        this.#gso = vnet ? b.gso[i] : 0;
        ep.countRx(b.lengths[i]);
        this.#fromEndpoint(ep, b.offsets[i], b.lengths[i]);
      }
      this.#flush();
      if (n < b.size) return;
    }
  }

  #fromEndpoint(ep: Endpoint, off: number, len: number): void {
    this.#inFd = ep.fd;
    this.#inAddr = this.#inPort = 0;
    this.#inPrefixOff = off;
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
    this.#forward(off, this.#parser.ipLength, ep);
  }

  // --- inbound --------------------------------------------------------------

  /** Readiness callback of the underlay UDP socket. */
  onUnderlayReadable(): void {
    const b = this.#o.udpBatch, rx = this.#rx, fp = this.fastPath;
    if (fp !== null && fp.udpPending[0] > 0) {
      // Misses of the native poll that just ran: coalesced packets (GRO) or slots of the UDP batch.
      const pend = fp.udpPending, m = pend[0];
      this.#begin(b);
      for (let k = 1; k <= m; k++) {
        const p = pend[k];
        if (rx !== null) {
          const slot = rx.slots[p];
          this.#gso = rx.gso[p];
          this.#fromUnderlay(rx.offsets[p], rx.lengths[p], b.addrs[slot], b.ports[slot]);
        } else {
          this.#gso = 0;
          this.#fromUnderlay(b.offsets[p], b.lengths[p], b.addrs[p], b.ports[p]);
        }
      }
      pend[0] = 0;
      this.#flush();
      return; // the next batch is the native poll's again
    }
    for (let round = 0; round < BATCHES_PER_WAKEUP; round++) {
      if (rx === null) {
        const n = native.recvBatch(this.#o.udpFd, b.buf, b.offsets, b.lengths, b.maxLen, b.addrs, b.ports, b.size);
        if (n === 0) return;
        this.#begin(b);
        this.#gso = 0;
        for (let i = 0; i < n; i++) {
          this.#countRx(b.lengths[i], 0);
          this.#fromUnderlay(b.offsets[i], b.lengths[i], b.addrs[i], b.ports[i]);
        }
        this.#flush();
        if (n < b.size) return;
        continue;
      }
      const n = native.recvBatch(this.#o.udpFd, b.buf, b.offsets, b.lengths, b.maxLen, b.addrs, b.ports, b.size, b.gso);
      if (n === 0) return;
      this.#begin(b);
      for (let i = 0; i < n; i++) this.#countRx(b.lengths[i], b.gso[i]);
      const np = native.groCoalesce(b.buf, b.offsets, b.lengths, b.gso, b.addrs, b.ports, n, b.maxLen, this.#prefixLen,
        rx.offsets, rx.lengths, rx.gso, rx.slots);
      for (let p = 0; p < np; p++) {
        const slot = rx.slots[p];
        this.#gso = rx.gso[p];
        this.#fromUnderlay(rx.offsets[p], rx.lengths[p], b.addrs[slot], b.ports[slot]);
      }
      this.#flush();
      if (n < b.size) return;
    }
  }

  /** Underlay receive counters: a UDP_GRO train of `train`-byte datagrams counts each datagram. */
  #countRx(len: number, train: number): void {
    if (len < 0) return;
    this.#udpRxPackets += train > 0 ? Math.ceil(len / train) : 1;
    this.#udpRxBytes += len;
  }

  #fromUnderlay(off: number, len: number, addr: number, port: number): void {
    this.#inFd = this.#o.udpFd;
    this.#inAddr = addr;
    this.#inPort = port;
    this.#inPrefixOff = off;
    if (len < 0) {
      this.drops.count(Drop.TooBig);
      return;
    }
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
    peer.counters.rxPackets++;
    peer.counters.rxBytes += len - (inner - off);
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
    this.#forward(inner, this.#parser.ipLength, null);
  }

  // --- misses of the datapath threads --------------------------------------------

  /**
   * The native datapath threads left packets for the slow path (their misses): drain them a batch
   * at a time and forward each as if read here — from the endpoint whose queue it came in on, or
   * from the underlay. A long backlog yields to the event loop between rounds.
   */
  onThreadMisses(): void {
    const b = this.#threadBatch, fds = this.#threadFds, fp = this.fastPath;
    if (b === null || fds === null || fp === null) return;
    const udpFd = this.#o.udpFd;
    for (let round = 0; round < BATCHES_PER_WAKEUP; round++) {
      const n = fp.drain(b, fds, this.#ringDropped);
      // A full ring (JS too slow for the threads' misses) dropped these on the way here.
      if (this.#ringDropped[0] > 0) this.drops.count(Drop.RingFull, this.#ringDropped[0]);
      if (n === 0) return;
      this.#begin(b);
      // A datapath thread may forward the flow's next packet the moment its entry is installed,
      // while this one still waits in a TX queue: installs here send what is queued first.
      this.#drainingThreads = true;
      for (let i = 0; i < n; i++) {
        const off = b.offsets[i], len = b.lengths[i];
        if (fds[i] === udpFd) {
          this.#gso = b.gso[i];
          this.#fromUnderlay(off, len, b.addrs[i], b.ports[i]);
          continue;
        }
        const ep = fp.endpointOf(fds[i]);
        if (ep === undefined) continue; // its endpoint closed since
        this.#gso = ep.vnet ? b.gso[i] : 0;
        this.#fromEndpoint(ep, off, len);
      }
      this.#drainingThreads = false;
      this.#flush();
      if (n < b.size) return;
    }
    if (!this.#threadDrainQueued) {
      this.#threadDrainQueued = true;
      setImmediate(() => {
        this.#threadDrainQueued = false;
        this.onThreadMisses();
      });
    }
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
    this.#inFd = -1;
    for (let i = 0; i < count; i++) {
      const off = batch.offsets[i];
      if (this.#parser.parse(batch.buf, off, batch.lengths[i], key) !== Drop.None) continue;
      // Held copies keep their GSO meta (the MSS of a super-packet); -1: find out from the MTU.
      this.#gso = batch.gso[i] > 0 ? batch.gso[i] : -1;
      this.#forward(off, this.#parser.ipLength, from[i] ?? null);
    }
    this.#flush();
  }

  // --- shared: route, TTL, MTU, policy, queue ---------------------------------

  /**
   * Forwards the packet parsed into #key/#parser. `from` null: it came out of the overlay
   * (directly or held and reinjected), so it may only go to a local endpoint, never on to a peer.
   */
  #forward(off: number, len: number, from: Endpoint | null): void {
    const key = this.#key, p = this.#parser, router = this.#o.router;
    const v4 = key.family === 4;
    const to = v4 ? router.local4(key.dst0) : router.local6(key.dst0, key.dst1, key.dst2, key.dst3);
    let peer: Peer | null = null;
    if (to === undefined) {
      if (from !== null) peer = v4 ? router.peer4(key.dst0) : router.peer6(key.dst0, key.dst1, key.dst2, key.dst3);
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
    // A super-packet travels as segments: each segment (headers + MSS) must fit.
    let gso = this.#gso;
    if (gso !== 0) {
      if (key.protocol !== TCP || p.fragment !== Fragment.None) gso = 0;
      else if (gso < 0) gso = len > mtu ? mtu - (p.l4Offset - off) - p.tcp.headerLength() : 0;
      this.#gso = gso;
    }
    const wire = gso > 0 ? p.l4Offset - off + p.tcp.headerLength() + gso : len;
    if (wire > mtu || gso < 0) {
      this.drops.count(Drop.TooBig);
      // We do not fragment: IPv4 without DF is dropped silently, as a router with fragmentation off would.
      if (!v4 || p.ip4.dontFragment()) this.#icmpError(IcmpError.TooBig, off, len, mtu);
      return;
    }
    const verdict = this.gate.decide(key, p, len, from ?? undefined, to, gso);
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
    if (!to.queued) {
      to.queued = true;
      this.#dirty[this.#dirtyCount++] = to;
    }
    // A full queue (coalescing can yield more packets than slots) is flushed early: the batch buffer stays valid.
    if (to.tx.full) this.#flushEndpoint(to, this.#batch.buf);
    if (!to.tx.push(off, len, 0, 0, this.#gso)) this.drops.count(Drop.QueueFull);
    else if (this.#mayInstall()) {
      if (this.#drainingThreads) this.#flushEndpoint(to, this.#batch.buf);
      this.fastPath!.installToEndpoint(this.#batch.buf, off, len, this.#inPrefixOff, this.#inFd, this.#inAddr, this.#inPort, to);
      this.#countHarvested();
    }
  }

  #toPeer(peer: Peer, off: number, len: number): void {
    const start = this.#o.backend.encap(this.#batch.buf, off, len, peer, this.#o.local);
    if (start < 0) return this.drops.count(-start);
    if (this.udpTx.full) this.#flushUdp(this.#batch.buf);
    if (!this.udpTx.push(start, len + (off - start), peer.underlayAddr, peer.port, this.#gso)) {
      this.drops.count(Drop.QueueFull);
      return;
    }
    peer.counters.txPackets++;
    peer.counters.txBytes += len;
    if (this.#mayInstall()) {
      if (this.#drainingThreads) this.#flushUdp(this.#batch.buf);
      this.fastPath!.installToPeer(this.#batch.buf, off, len, start, this.#inFd, this.#o.udpFd, this.#o.overlayMtu,
        peer.underlayAddr, peer.port);
      this.#countHarvested();
    }
  }

  /** The packets the fast path forwarded for the flow just installed again count in the gate's flow counters. */
  #countHarvested(): void {
    const h = this.fastPath!.harvested;
    if (h[0] > 0) this.gate.addForwarded?.(h[0], h[1]);
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
    this.#gso = 0;
    this.#inFd = -1;
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
    if (this.fastPath !== null) this.#watchGate();
  }

  /** One native write per endpoint that received packets, one sendmmsg for the overlay. */
  #flush(): void {
    const buf = this.#batch.buf;
    for (let i = 0; i < this.#dirtyCount; i++) {
      const ep = this.#dirty[i];
      this.#flushEndpoint(ep, buf);
      ep.queued = false;
      this.#dirty[i] = undefined!;
    }
    this.#dirtyCount = 0;
    this.#flushUdp(buf);
    this.gate.endBatch?.();
  }

  #flushEndpoint(ep: Endpoint, buf: Buffer): void {
    if (ep.fd >= 0) this.drops.count(Drop.QueueFull, ep.tx.flushTun(ep.fd, buf, ep.vnet));
    else ep.tx.count = 0;
  }

  #flushUdp(buf: Buffer): void {
    this.drops.count(Drop.QueueFull, this.udpTx.flushUdp(this.#o.udpFd, buf, this.#prefixLen, this.offloads.gso));
  }
}
