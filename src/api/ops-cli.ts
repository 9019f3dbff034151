// Read commands against a running daemon: `sluice status`, `peers`, `endpoints`,
// `policies`, `flows`, `trace`. Every one takes --api and --json.
import type { Command } from 'commander';
import { getJson } from './client.js';
import { DEFAULT_API_ADDRESS } from './server.js';
import type { DaemonStats, DatapathStats, PolicySummary } from './stats.js';
import type { FlowRecord } from '../flow/flow-log.js';
import type { TraceResult } from '../daemon/trace.js';
import { table } from './table.js';

interface ReadOpts { api: string; json: boolean }

function readCommand(program: Command, name: string, description: string) {
  return program
    .command(name)
    .description(description)
    .option('--api <address>', 'the daemon\'s API address, HOST:PORT or unix:/path', DEFAULT_API_ADDRESS)
    .option('--json', 'print JSON instead of a table', false);
}

const out = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

export function registerOpsCommands(program: Command): void {
  readCommand(program, 'status', 'health, endpoints, peers and drop counters of the local daemon')
    .action(async (o: ReadOpts) => {
      const [health, stats] = await Promise.all([
        getJson<{ status: string; reasons: string[] }>(o.api, '/healthz'),
        getJson<DaemonStats>(o.api, '/stats'),
      ]);
      if (o.json) return out(JSON.stringify({ health, ...stats }, null, 2));
      const drops = Object.entries(stats.drops).filter(([, n]) => n > 0);
      out([
        `health: ${health.status}${health.reasons.length ? ` (${health.reasons.join('; ')})` : ''}`,
        `store: ${stats.store.status}${stats.store.reasons.length ? ` (${stats.store.reasons.join('; ')})` : ''}`,
        `underlay: rx ${stats.underlay.rxPackets} pkts / ${stats.underlay.rxBytes} B, tx ${stats.underlay.txPackets} pkts / ${stats.underlay.txBytes} B`,
        ...(stats.datapath ? [datapathLine(stats.datapath)] : []),
        `memory: ${(stats.memory.rss / 1048576).toFixed(1)} MiB resident (heap ${(stats.memory.heapUsed / 1048576).toFixed(1)} MiB, ` +
          `typed arrays and other memory outside it ${(stats.memory.external / 1048576).toFixed(1)} MiB)`,
        '', 'endpoints:', endpointTable(stats),
        '', 'peers:', peerTable(stats),
        '', `drops: ${drops.length ? drops.map(([r, n]) => `${r}=${n}`).join(' ') : 'none'}`,
      ].join('\n'));
    });

  readCommand(program, 'peers', 'the hosts this daemon tunnels to')
    .action(async (o: ReadOpts) => {
      const stats = await getJson<DaemonStats>(o.api, '/stats');
      out(o.json ? JSON.stringify(stats.peers, null, 2) : peerTable(stats));
    });

  readCommand(program, 'endpoints', 'the workload endpoints (TUN devices) of this daemon, with counters')
    .action(async (o: ReadOpts) => {
      const stats = await getJson<DaemonStats>(o.api, '/stats');
      out(o.json ? JSON.stringify(stats.endpoints, null, 2) : endpointTable(stats));
    });

  readCommand(program, 'policies', 'the policies in force, in evaluation order')
    .action(async (o: ReadOpts) => {
      const list = await getJson<PolicySummary[]>(o.api, '/policies');
      if (o.json) return out(JSON.stringify(list, null, 2));
      out(list.length === 0 ? '  (no policies: every endpoint is open)' : table([['POLICY', 'ORDER', 'TYPES'],
        ...list.map((p) => [p.id, p.order === undefined ? '-' : String(p.order), p.types.join(',')])]));
    });

  readCommand(program, 'flows', 'the flow cache, like conntrack -L: 5-tuple, verdict, deciding policy, counters')
    .option('--deny-only', 'only denied flows', false)
    .option('--watch', 'redraw every second until interrupted', false)
    .option('--limit <n>', 'show at most this many flows', '200')
    .action(async (o: ReadOpts & { denyOnly: boolean; watch: boolean; limit: string }) => {
      const show = async () => {
        const flows = await getJson<FlowRecord[]>(o.api, `/flows?limit=${encodeURIComponent(o.limit)}${o.denyOnly ? '&deny=1' : ''}`);
        if (o.json) return out(JSON.stringify(flows, null, o.watch ? undefined : 2));
        if (o.watch) process.stdout.write('\x1b[2J\x1b[H');
        out(flowTable(flows));
      };
      await show();
      if (!o.watch) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => show().catch((err) => { clearInterval(timer); reject(err); }), 1000);
        process.once('SIGINT', () => { clearInterval(timer); resolve(); });
      });
    });

  readCommand(program, 'trace', 'which policy and rule decide a flow, and the route its packets take')
    .requiredOption('--from <pod>', 'source: NAMESPACE/POD or an IP')
    .requiredOption('--to <pod>', 'destination: NAMESPACE/POD or an IP')
    .option('--protocol <p>', 'TCP, UDP, SCTP, ICMP', 'TCP')
    .requiredOption('--port <n>', 'destination port')
    .action(async (o: ReadOpts & { from: string; to: string; protocol: string; port: string }) => {
      const q = new URLSearchParams({ from: o.from, to: o.to, protocol: o.protocol, port: o.port });
      const t = await getJson<TraceResult>(o.api, `/trace?${q}`);
      if (o.json) return out(JSON.stringify(t, null, 2));
      const dir = (name: string, d: TraceResult['verdict']['egress']) =>
        `${name.padEnd(7)} ${d.allowed ? 'allow' : 'DENY '}  ${d.reason}${d.policy ? `: ${d.policy} rule ${d.rule ?? '-'}${d.action ? ` (${d.action})` : ''}` : ''}`;
      out([`${t.protocol}/${t.port} ${t.from.pod ?? t.from.address} → ${t.to.pod ?? t.to.address}`,
        dir('egress', t.verdict.egress), dir('ingress', t.verdict.ingress), '', 'route:', ...t.route.map((r) => `  ${r}`)].join('\n'));
    });
}

function flowTable(flows: FlowRecord[]): string {
  if (flows.length === 0) return '  (no flows)';
  const port = (p?: number) => (p === undefined ? '' : `:${p}`);
  const decided = (f: FlowRecord) => [f.egress, f.ingress].map((s) => s?.policy ? `${s.policy}#${s.rule ?? '-'}` : '').filter(Boolean).join(' ');
  return table([['PROTO', 'SOURCE', 'DESTINATION', 'VERDICT', 'PACKETS', 'BYTES', 'DECIDED BY'],
    ...flows.map((f) => [f.protocol, `${f.src}${port(f.srcPort)}`, `${f.dst}${port(f.dstPort)}`, f.verdict,
      String(f.packets), String(f.bytes), decided(f)])]);
}

function endpointTable(s: DaemonStats): string {
  if (s.endpoints.length === 0) return '  (none)';
  return table([['ENDPOINT', 'IP', 'TUN', 'FROM-POD PKTS', 'TO-POD PKTS'],
    ...s.endpoints.map((e) => [e.name, e.ip, e.tun, String(e.rxPackets), String(e.txPackets)])]);
}

function peerTable(s: DaemonStats): string {
  if (s.peers.length === 0) return '  (none)';
  return table([['PEER', 'UNDERLAY', 'SUBNET', 'RX PKTS', 'RX BYTES', 'TX PKTS', 'TX BYTES'],
    ...s.peers.map((p) => [p.name, p.underlay, p.subnet, String(p.rxPackets), String(p.rxBytes), String(p.txPackets), String(p.txBytes)])]);
}

function datapathLine(d: DatapathStats): string {
  const on = (['tun', 'gso', 'gro'] as const).filter((k) => d.offloads[k]);
  const fp = d.fastPath ? `fast path ${d.fastPath.entries} flows, ${d.fastPath.hits} pkts native / ${d.fastPath.toJs} to JS` : 'fast path off';
  return `datapath: ${d.threads} thread(s)${d.busyPollUs ? `, busy poll ${d.busyPollUs} µs` : ''}, offloads ${on.length ? on.join(',') : 'none'}` +
    `${d.offloads.errors.length ? ` (${d.offloads.errors.join('; ')})` : ''}, ${fp}`;
}
