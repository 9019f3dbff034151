// The daemon's local HTTP API: /healthz, /metrics (Prometheus), /stats (JSON).
// Listens on 127.0.0.1:9765 by default, or on a unix socket ("unix:/path"),
// which is how a lab reaches daemons living in other network namespaces.
import { createServer, type Server } from 'node:http';
import { unlink } from 'node:fs/promises';
import { Gauge, Registry } from 'prom-client';
import { collectStats, type DaemonStats, type StatsSource } from './stats.js';

export const DEFAULT_API_ADDRESS = '127.0.0.1:9765';

export type ApiAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses "HOST:PORT" or "unix:/path"; throws naming the flag. */
export function parseApiAddress(text: string): ApiAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path) throw new Error(`--api ${text}: missing socket path after "unix:"`);
    return { kind: 'unix', path };
  }
  const m = /^(.*):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || port > 65535) throw new Error(`--api ${text}: expected HOST:PORT (e.g. ${DEFAULT_API_ADDRESS}) or unix:/path`);
  return { kind: 'tcp', host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/** Prometheus metrics, read from the source when scraped (gauges) or observed by it (its histograms). */
function metricsRegistry(src: StatsSource): Registry {
  const registry = new Registry();
  // One /stats snapshot per scrape, shared by the collectors below.
  let scrape: { at: number; stats: DaemonStats } | undefined;
  const stats = () => {
    const now = Date.now();
    if (scrape === undefined || now - scrape.at > 100) scrape = { at: now, stats: collectStats(src) };
    return scrape.stats;
  };
  const gauge = (name: string, help: string, labelNames: string[], read: (g: Gauge) => void) =>
    registry.registerMetric(new Gauge({ name, help, labelNames, registers: [], collect() { this.reset(); read(this); } }));
  gauge('sluice_drops_total', 'Packets dropped, by reason', ['reason'], (g) => {
    for (const [reason, n] of Object.entries(stats().drops)) g.set({ reason }, n);
  });
  // Counters of a thing (endpoint, peer) in two directions: [name, first direction's value, second's].
  const twoWay = (name: string, help: string, label: string, dirs: [string, string], rows: () => [string, number, number][]) =>
    gauge(name, help, [label, 'direction'], (g) => {
      for (const [id, a, b] of rows()) {
        g.set({ [label]: id, direction: dirs[0] }, a);
        g.set({ [label]: id, direction: dirs[1] }, b);
      }
    });
  const workload: [string, string] = ['from_workload', 'to_workload'];
  twoWay('sluice_endpoint_packets_total', 'Packets per workload endpoint and direction', 'endpoint', workload,
    () => stats().endpoints.map((e) => [e.name, e.rxPackets, e.txPackets]));
  twoWay('sluice_endpoint_bytes_total', 'Bytes per workload endpoint and direction', 'endpoint', workload,
    () => stats().endpoints.map((e) => [e.name, e.rxBytes, e.txBytes]));
  twoWay('sluice_peer_packets_total', 'Overlay packets per peer host and direction (a TCP super-packet counts once)', 'peer', ['rx', 'tx'],
    () => stats().peers.map((p) => [p.name, p.rxPackets, p.txPackets]));
  twoWay('sluice_peer_bytes_total', 'Inner bytes per peer host and direction', 'peer', ['rx', 'tx'],
    () => stats().peers.map((p) => [p.name, p.rxBytes, p.txBytes]));
  twoWay('sluice_underlay_packets_total', 'Overlay datagrams on the underlay socket', 'socket', ['rx', 'tx'],
    () => [['udp', stats().underlay.rxPackets, stats().underlay.txPackets]]);
  twoWay('sluice_underlay_bytes_total', 'Bytes of overlay datagrams on the underlay socket', 'socket', ['rx', 'tx'],
    () => [['udp', stats().underlay.rxBytes, stats().underlay.txBytes]]);
  gauge('sluice_flow_cache', 'Flow cache: entries, and cumulative hits, misses, evictions', ['kind'], (g) => {
    const p = src.policyStats();
    if (!p) return;
    g.set({ kind: 'flows' }, p.cache.flows);
    g.set({ kind: 'hits' }, p.hits);
    g.set({ kind: 'misses' }, p.misses);
    g.set({ kind: 'evictions' }, p.cache.evicted);
  });
  gauge('sluice_fast_path', 'Native fast path: live entries, and cumulative installs, hits, misses, evictions', ['kind'], (g) => {
    const f = stats().datapath?.fastPath;
    if (!f) return;
    g.set({ kind: 'entries' }, f.entries);
    g.set({ kind: 'installs' }, f.installs);
    g.set({ kind: 'hits' }, f.hits);
    g.set({ kind: 'misses' }, f.misses);
    g.set({ kind: 'evictions' }, f.evictions);
  });
  gauge('sluice_datapath_thread_packets_total', 'Packets per datapath thread (0: the JS thread): read, sent, forwarded natively, left to JS', ['thread', 'kind'], (g) => {
    const per = stats().datapath?.fastPath?.perThread ?? [];
    per.forEach((t, i) => {
      const thread = String(i);
      g.set({ thread, kind: 'rx' }, t.rxPackets);
      g.set({ thread, kind: 'tx' }, t.txPackets);
      g.set({ thread, kind: 'native' }, t.hits);
      g.set({ thread, kind: 'to_js' }, t.toJs);
    });
  });
  gauge('sluice_policy_generation', 'Generation of the policy snapshot in force', [], (g) => {
    const p = src.policyStats();
    if (p) g.set(p.generation);
  });
  gauge('sluice_policy_pool_pending', 'New-flow evaluation requests in flight in the worker pool', [], (g) => {
    const p = src.policyStats();
    if (p) g.set(p.missTasksInFlight);
  });
  gauge('sluice_store_state', 'The cluster store as the daemon sees it (1 for the current state): degraded = unreachable, running on the last known state', ['state'], (g) => {
    const h = src.storeHealth();
    for (const state of ['ok', 'degraded']) g.set({ state }, h.status === state ? 1 : 0);
  });
  gauge('sluice_process_memory_bytes', 'Memory of the daemon process: resident set, V8 heap in use, memory outside the heap (typed arrays)', ['kind'], (g) => {
    const m = process.memoryUsage();
    g.set({ kind: 'rss' }, m.rss);
    g.set({ kind: 'heap_used' }, m.heapUsed);
    g.set({ kind: 'external' }, m.external);
  });
  for (const m of src.metrics()) registry.registerMetric(m);
  return registry;
}

/** Loopback clients (and unix-socket clients, which have no address) are local. */
export function isLocalClient(remote: string | undefined): boolean {
  if (remote === undefined) return true;
  const a = remote.replace(/^::ffff:/, '');
  return a === '::1' || a.startsWith('127.');
}

export class ApiServer {
  readonly #server: Server;
  #unixPath: string | undefined;

  /** `allowRemote`: answer clients that are not on this host too (off by default: the API tells a lot). */
  constructor(src: StatsSource, allowRemote = false) {
    const registry = metricsRegistry(src);
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://sluice');
      const json = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body) + '\n');
      };
      if (!allowRemote && !isLocalClient(req.socket.remoteAddress)) {
        return json(403, { error: 'the sluice API answers local clients only (start the daemon with --api-allow-remote to change that)' });
      }
      if (req.method !== 'GET') return json(405, { error: 'only GET is supported' });
      switch (url.pathname) {
        case '/healthz': {
          const h = src.health();
          return json(h.status === 'ok' ? 200 : 503, h);
        }
        case '/stats':
          return json(200, collectStats(src));
        case '/endpoints':
          return json(200, collectStats(src).endpoints);
        case '/peers':
          return json(200, collectStats(src).peers);
        case '/policies':
          return json(200, src.policies());
        case '/flows': {
          const limit = Number(url.searchParams.get('limit') ?? 1000);
          if (!Number.isInteger(limit) || limit < 1) return json(400, { error: 'limit: expected a positive integer' });
          return json(200, src.flowRecords(url.searchParams.get('deny') === '1', limit));
        }
        case '/trace': {
          const q = url.searchParams;
          try {
            return json(200, src.trace({ from: q.get('from') ?? '', to: q.get('to') ?? '', protocol: q.get('protocol') ?? 'TCP', port: Number(q.get('port') ?? 0) }));
          } catch (err) {
            return json(400, { error: (err as Error).message });
          }
        }
        case '/metrics':
          registry.metrics().then((text) => {
            res.writeHead(200, { 'content-type': registry.contentType });
            res.end(text);
          }, (err: Error) => json(500, { error: err.message }));
          return;
        default:
          return json(404, { error: `no such route ${url.pathname}`, routes: ['/healthz', '/metrics', '/stats', '/endpoints', '/peers', '/policies', '/flows', '/trace'] });
      }
    });
  }

  async listen(addr: ApiAddress): Promise<void> {
    if (addr.kind === 'unix') {
      await unlink(addr.path).catch(() => undefined); // a stale socket from a crashed daemon
      this.#unixPath = addr.path;
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      if (addr.kind === 'unix') this.#server.listen(addr.path, resolve);
      else this.#server.listen(addr.port, addr.host, resolve);
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#unixPath) await unlink(this.#unixPath).catch(() => undefined);
  }
}
