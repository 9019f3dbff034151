// The composition root: store → peers, endpoints and routes → dataplane.
//
//   Store ──snapshot──► Daemon.#apply ──► PeerTable (other hosts' subnets)
//                                    └──► Endpoints (TUN per local pod) ──► Router
//   TUN fds ──Poller──► Forwarder ──► TUN fds / UDP socket
//   UDP fd  ──Poller──┘
import { unlink, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { UdpOpenFlags, native, type Poller } from '../native/binding.js';
import { createBackend, type OverlayBackend, type OverlayLocal } from '../overlay/backend.js';
import { parseMac, PeerCounters } from '../overlay/peer.js';
import { PeerTable, type Peer } from '../overlay/peer-table.js';
import { ApiServer, type ApiAddress } from '../api/server.js';
import type { DatapathStats, PeerStats, PolicySummary, StatsSource } from '../api/stats.js';
import { Histogram, type Metric } from 'prom-client';
import type { EnforcerStats } from '../flow/policy-enforcer.js';
import type { FlowRecord } from '../flow/flow-log.js';
import { trace, type TraceQuery, type TraceResult } from './trace.js';
import { dropName } from '../packet/drop.js';
import { Endpoint } from '../dataplane/endpoint.js';
import { offloadsFromEnv, type Offloads } from '../dataplane/offloads.js';
import type { FastPathOptions } from '../dataplane/fast-path.js';
import { Forwarder } from '../dataplane/forwarder.js';
import { HEADROOM, PacketBatch } from '../dataplane/packet-batch.js';
import { PolicyEnforcer, type PolicyEnforcerOptions } from '../flow/policy-enforcer.js';
import { resourcesFromObjects } from '../policy/manifests.js';
import { PolicyState } from '../policy/state.js';
import { comparePolicies } from '../policy/compiler.js';
import { Router } from '../dataplane/router.js';
import type { EndpointRecord, HostRecord, Store, StoreSnapshot } from '../store/store.js';
import { subnetGateway4, subnetGateway6 } from './gateway.js';
import { mtuOfAddress } from './ip.js';
import { ipv4ToUint32 } from '../dataplane/addresses.js';

/** Packets per batch: one native call moves up to this many. */
const BATCH_SIZE = 64;
/** A slot holds the largest IP packet, so an oversized one is seen whole and answered with ICMP. */
const SLOT_SIZE = HEADROOM + 65536;
const SOCKET_BUFFER_BYTES = 4 << 20;
const STATS_INTERVAL_MS = 30_000;
/**
 * The C heap's free pages go back to the kernel (malloc_trim, on libuv's thread pool) when RSS
 * grew by TRIM_GROWTH_BYTES since the last trim, checked this often: glibc keeps what its
 * per-thread arenas freed after a burst of new flows resident (4-6 MiB measured with 1M flows).
 */
const TRIM_INTERVAL_MS = 10_000;
const TRIM_GROWTH_BYTES = 4 << 20;

export interface DaemonOptions {
  store: Store;
  hostName: string;
  log: Logger;
  readyFile?: string;
  /** Names the store in error messages ("cluster.yaml manifests"). */
  source: string;
  /** Options of the flow cache, policy workers and flow logs. */
  policy?: Omit<PolicyEnforcerOptions, 'logger' | 'onRelease'>;
  /** Where the HTTP API listens; undefined: no API. */
  api?: ApiAddress;
  /** Let the API answer non-local clients. */
  apiAllowRemote?: boolean;
  /** Data path threads (default 1): each endpoint TUN gets one queue per thread. */
  datapathThreads?: number;
  /** With threads > 1: false forwards decided flows only on the native threads (default: SLUICE_DATAPATH_MAIN, else true). */
  datapathMain?: boolean;
  /** Keep endpoint TUN devices across daemon restarts (TUNSETPERSIST; default false). */
  persistTun?: boolean;
  /** Kernel offloads (default: SLUICE_OFFLOAD* environment, else all). */
  offloads?: Offloads;
  /** Native fast path for decided flows (null: off; default: SLUICE_FASTPATH* environment, else on). */
  fastPath?: FastPathOptions | null;
  /** SCHED_FIFO priority of the data path (0: normal; default: SLUICE_REALTIME). */
  realtime?: number;
  /** With datapathThreads > 1: µs the native threads keep polling after a packet (0: off, the default). */
  busyPollUs?: number;
}

export class Daemon implements StatsSource {
  readonly #o: DaemonOptions;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #pollers = new Map<Endpoint, Poller>();
  #self!: HostRecord;
  #backend!: OverlayBackend;
  #local!: OverlayLocal;
  #peers!: PeerTable;
  #router!: Router;
  #forwarder!: Forwarder;
  #udpFd = -1;
  #udpPoller: Poller | undefined;
  #endpointMtu = 0;
  #unwatch: (() => void) | undefined;
  #unwatchHealth: (() => void) | undefined;
  #statsTimer: NodeJS.Timeout | undefined;
  #trimTimer: NodeJS.Timeout | undefined;
  #trimming = false;
  #rssAfterTrim = 0;
  readonly #policy = new PolicyState();
  /** The last store snapshot applied (hosts and endpoints for `trace`). */
  #store!: StoreSnapshot;
  #gate!: PolicyEnforcer;
  #api: ApiServer | undefined;
  #ready = false;
  /** Serialises snapshot application: endpoint setup is async. */
  #applying: Promise<void> = Promise.resolve();

  readonly #offloads: Offloads;
  /** Wall time of a policy evaluation batch (a pool task or an inline run), by new flows / revalidation. */
  readonly #evalSeconds = new Histogram({
    name: 'sluice_policy_evaluation_seconds', help: 'Time to evaluate a batch of flows against policy (queueing in the pool included)',
    labelNames: ['kind'], registers: [], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  });

  constructor(o: DaemonOptions) {
    this.#o = o;
    this.#offloads = o.offloads ?? offloadsFromEnv();
  }

  // StatsSource, for the HTTP API.
  forwarder(): Forwarder | undefined { return this.#forwarder; }
  endpoints(): Iterable<Endpoint> { return this.#endpoints.values(); }
  peers(): PeerStats[] {
    if (!this.#peers) return [];
    // The fast path counts by underlay address; a peer is found the way the forwarder finds a sender.
    const fast = new Map<Peer, PeerCounters>();
    if (this.#forwarder?.fastPath) {
      for (const s of native.fastPathPeerStats()) {
        const p = this.#peers.lookupByUnderlay(s.addr, s.port);
        if (p === null) continue;
        const c = fast.get(p) ?? new PeerCounters();
        c.rxPackets += s.rxPackets;
        c.rxBytes += s.rxBytes;
        c.txPackets += s.txPackets;
        c.txBytes += s.txBytes;
        fast.set(p, c);
      }
    }
    return this.#peers.peers().map((p) => {
      const f = fast.get(p);
      const c = p.counters;
      return {
        name: p.name, underlay: `${p.record.publicIP}:${p.port}`, subnet: p.record.subnet,
        rxPackets: c.rxPackets + (f?.rxPackets ?? 0), rxBytes: c.rxBytes + (f?.rxBytes ?? 0),
        txPackets: c.txPackets + (f?.txPackets ?? 0), txBytes: c.txBytes + (f?.txBytes ?? 0),
      };
    });
  }
  policyStats(): EnforcerStats | undefined { return this.#gate?.stats(); }
  flowRecords(denyOnly: boolean, limit: number): FlowRecord[] {
    return this.#gate ? this.#gate.flowRecords(denyOnly, limit) : [];
  }
  policies(): PolicySummary[] {
    return [...this.#policy.resources.policies].sort(comparePolicies).map((p) => ({
      id: p.id, kind: p.kind, namespace: p.namespace, name: p.name, order: p.order,
      types: [p.types.ingress ? 'Ingress' : '', p.types.egress ? 'Egress' : ''].filter(Boolean),
    }));
  }
  trace(q: TraceQuery): TraceResult {
    return trace(q, this.#policy.snapshot, this.#policy.resources, this.#store);
  }
  health(): { status: 'ok' | 'degraded' | 'starting'; reasons: string[] } {
    if (!this.#ready) return { status: 'starting', reasons: ['endpoints not yet configured'] };
    return this.storeHealth();
  }
  storeHealth(): { status: 'ok' | 'degraded'; reasons: string[] } {
    return this.#o.store.health?.() ?? { status: 'ok', reasons: [] };
  }
  datapath(): DatapathStats | undefined {
    const f = this.#forwarder;
    if (!f) return undefined;
    return {
      threads: f.datapathThreads,
      busyPollUs: f.busyPollUs,
      offloads: { ...f.offloads, errors: [...f.offloadErrors] },
      offloadCounters: native.offloadStats(),
      fastPath: f.fastPath ? native.fastPathStats() : null,
    };
  }
  metrics(): Metric[] {
    return [this.#evalSeconds];
  }

  async start(): Promise<void> {
    const { store, hostName, log } = this.#o;
    const snap = await store.load();
    const self = snap.hosts.find((h) => h.name === hostName);
    if (!self) {
      throw new Error(`--host ${hostName}: no such host in the config (hosts: ${snap.hosts.map((h) => h.name).join(', ') || 'none'})`);
    }
    this.#self = self;
    const cfg = snap.config;
    const underlayMtu = cfg.mtu ?? await mtuOfAddress(self.publicIP);
    if (underlayMtu === undefined) {
      throw new Error(`hosts[${hostName}].publicIP: ${self.publicIP} is not an address of any interface here (set network.MTU or fix publicIP)`);
    }
    this.#local = { vtepMac: parseMac(self.vtepMAC, `host "${hostName}"`, 'vtepMAC') };
    this.#backend = createBackend(cfg.backend.type, { local: this.#local, vni: cfg.backend.vni, port: cfg.backend.port });
    this.#endpointMtu = underlayMtu - this.#backend.overhead;
    this.#peers = new PeerTable(this.#backend.port, []);
    this.#router = new Router(this.#peers);
    // More than one datapath thread: one underlay socket per thread on the same address:port (SO_REUSEPORT).
    const threads = this.#o.datapathThreads ?? 1;
    const underlay = { addr: ipv4ToUint32(self.publicIP), port: self.port ?? this.#backend.port, bufBytes: SOCKET_BUFFER_BYTES };
    this.#udpFd = native.udpOpen(underlay.addr, underlay.port, underlay.bufBytes, threads > 1 ? UdpOpenFlags.ReusePort : 0);
    this.#gate = new PolicyEnforcer({
      ...this.#o.policy,
      onEvaluated: (seconds, _flows, kind) => this.#evalSeconds.observe({ kind }, seconds),
      logger: log.child({ component: 'flow' }),
      onRelease: (batch, count, from) => this.#forwarder.reinject(batch, count, from),
    });
    this.#applyPolicy(snap, true);
    this.#forwarder = new Forwarder({
      router: this.#router,
      backend: this.#backend,
      local: this.#local,
      gate: this.#gate,
      udpFd: this.#udpFd,
      tunBatch: new PacketBatch(BATCH_SIZE, SLOT_SIZE),
      udpBatch: new PacketBatch(BATCH_SIZE, SLOT_SIZE),
      overlayMtu: this.#endpointMtu,
      routerAddr4: subnetGateway4(self.subnet),
      routerAddr6: subnetGateway6(self.ipv6Subnet),
      offloads: this.#offloads,
      fastPath: this.#o.fastPath,
      realtime: this.#o.realtime,
      busyPollUs: this.#o.busyPollUs,
      datapathThreads: threads,
      datapathMain: this.#o.datapathMain,
      underlay,
    });
    const fwd = this.#forwarder;
    this.#udpPoller = new native.Poller(this.#udpFd, (err) => {
      if (err) log.error({ err }, 'underlay socket poll failed');
      else fwd.onUnderlayReadable();
    });
    this.#udpPoller.start();
    log.info({ backend: cfg.backend.type, underlay: `${self.publicIP}:${self.port ?? this.#backend.port}`,
      subnet: self.subnet, underlayMtu, endpointMtu: this.#endpointMtu }, 'dataplane up');

    await this.#apply(snap, true);
    this.#unwatch = store.watch(
      (s) => { this.#applying = this.#applying.then(() => this.#apply(s)).catch((err) => log.error({ err }, 'applying store update failed')); },
      (err) => log.error({ err: err.message }, 'store update rejected; keeping the running state'),
    );
    this.#unwatchHealth = store.onHealth?.((h) => {
      if (h.status === 'ok') log.info('store reachable again; resynced');
      else log.warn({ reasons: h.reasons }, 'degraded: forwarding and enforcing with the last known state');
    });
    this.#statsTimer = setInterval(() => this.#logStats(), STATS_INTERVAL_MS).unref();
    this.#trimTimer = setInterval(() => this.#trimIfGrown(), TRIM_INTERVAL_MS).unref();
    if (this.#o.api) {
      this.#api = new ApiServer(this, this.#o.apiAllowRemote);
      await this.#api.listen(this.#o.api);
    }
    this.#ready = true;
    if (this.#o.readyFile) await writeFile(this.#o.readyFile, `${process.pid}\n`);
    log.info({ endpoints: this.#endpoints.size, peers: this.#peers.peers().length }, 'ready');
  }

  /**
   * Compiles the snapshot's manifests into a new policy generation. At start an
   * invalid set is fatal; later it is logged and the running policy stays.
   */
  #applyPolicy(snap: StoreSnapshot, starting: boolean): void {
    try {
      const compiled = this.#policy.replace(resourcesFromObjects(snap.manifests, this.#o.source, { unknownKinds: 'ignore' }));
      this.#gate.setSnapshot(compiled);
      this.#o.log.info({ generation: compiled.generation, policies: this.#policy.resources.policies.length }, 'policy applied');
    } catch (err) {
      if (starting) throw err;
      this.#o.log.error({ err: (err as Error).message }, 'policy update rejected; keeping the running policy');
    }
  }

  /** Brings peers and local endpoints in line with a snapshot. */
  async #apply(snap: StoreSnapshot, starting = false): Promise<void> {
    const log = this.#o.log;
    this.#store = snap;
    if (!starting) this.#applyPolicy(snap, false);
    try {
      this.#peers.replaceAll(snap.hosts.filter((h) => h.name !== this.#self.name));
    } catch (err) {
      log.error({ err: (err as Error).message }, 'peer update rejected; keeping the previous peers');
    }
    const wanted = new Map<string, EndpointRecord>();
    for (const e of snap.endpoints) if (e.host === this.#self.name) wanted.set(`${e.namespace}/${e.name}`, e);
    for (const [key, ep] of this.#endpoints) {
      const w = wanted.get(key);
      if (w && JSON.stringify(w) === JSON.stringify(ep.record)) continue;
      this.#removeEndpoint(key, ep, true);
    }
    for (const [key, rec] of wanted) {
      if (this.#endpoints.has(key)) continue;
      const ep = new Endpoint(rec, this.#endpointMtu, BATCH_SIZE + 16, this.#offloads,
        { queues: this.#o.datapathThreads ?? 1, persist: this.#o.persistTun ?? false });
      try {
        await ep.open();
      } catch (err) {
        // Missing privileges fail every endpoint alike: at start that is a configuration error, not one bad pod.
        if (starting && ['EPERM', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) {
          throw new Error(`endpoint ${key}: ${(err as Error).message} — the daemon needs CAP_NET_ADMIN ` +
            '(and CAP_SYS_ADMIN to configure endpoints inside other network namespaces)');
        }
        log.error({ endpoint: key, err: (err as Error).message }, 'endpoint setup failed');
        continue;
      }
      this.#endpoints.set(key, ep);
      const poller = new native.Poller(ep.fd, (err) => {
        if (err) log.error({ endpoint: key, err }, 'endpoint poll failed');
        else this.#forwarder.onEndpointReadable(ep);
      });
      poller.start();
      this.#pollers.set(ep, poller);
      this.#forwarder.attachEndpoint(ep); // the datapath threads poll its other queues from now on
      log.info({ endpoint: key, ip: rec.ip, netns: rec.netns, tun: ep.tunName, queues: ep.queues,
        ...(ep.persist ? { persistent: ep.reattached ? 're-attached' : 'created' } : {}) }, 'endpoint up');
    }
    this.#router.setEndpoints(this.#endpoints.values());
  }

  /** `destroy`: the store dropped it, so a persistent device goes too (on stop it stays). */
  #removeEndpoint(key: string, ep: Endpoint, destroy: boolean): void {
    this.#pollers.get(ep)?.close();
    this.#pollers.delete(ep);
    ep.close(destroy);
    this.#endpoints.delete(key);
    this.#o.log.info({ endpoint: key }, 'endpoint removed');
  }

  /**
   * Returns the C heap's free pages to the kernel when the process grew since the last trim (a
   * burst of new flows; the trim holds each malloc arena's lock while it walks it, so not idly).
   */
  #trimIfGrown(): void {
    if (this.#trimming || process.memoryUsage.rss() < this.#rssAfterTrim + TRIM_GROWTH_BYTES) return;
    this.#trimming = true;
    void native.mallocTrim().finally(() => {
      this.#trimming = false;
      this.#rssAfterTrim = process.memoryUsage.rss();
    });
  }

  #logStats(): void {
    const f = this.#forwarder;
    const drops: Record<string, number> = {};
    f.drops.counts.forEach((n, code) => { if (n > 0) drops[dropName(code)] = n; });
    this.#o.log.info({ udpRx: f.udpRxPackets, udpTx: f.udpTx.sentPackets, drops }, 'counters');
  }

  /** Removes every device and socket this daemon made (persistent TUNs stay for the next start). Safe after a failed start. */
  async stop(): Promise<void> {
    this.#unwatch?.();
    this.#unwatchHealth?.();
    await this.#api?.close();
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    if (this.#trimTimer) clearInterval(this.#trimTimer);
    await this.#applying.catch(() => undefined);
    for (const [key, ep] of [...this.#endpoints]) this.#removeEndpoint(key, ep, false);
    this.#router?.setEndpoints([]);
    this.#forwarder?.close(); // joins the datapath threads, closes their sockets
    this.#udpPoller?.close();
    await this.#gate?.close();
    if (this.#udpFd >= 0) {
      native.fastPathForget(this.#udpFd); // before its number can be reused
      native.closeFd(this.#udpFd);
    }
    this.#udpFd = -1;
    await this.#o.store.close();
    if (this.#o.readyFile) await unlink(this.#o.readyFile).catch(() => undefined);
  }
}
