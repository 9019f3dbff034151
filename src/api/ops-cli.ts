// Read commands against a running daemon: `sluice status`, `sluice peers`,
// `sluice endpoints`. Every one takes --api and --json.
import type { Command } from 'commander';
import { getJson } from './client.js';
import { DEFAULT_API_ADDRESS } from './server.js';
import type { DaemonStats } from './stats.js';
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
        `underlay: rx ${stats.underlay.rxPackets} pkts / ${stats.underlay.rxBytes} B, tx ${stats.underlay.txPackets} pkts / ${stats.underlay.txBytes} B`,
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
}

function endpointTable(s: DaemonStats): string {
  if (s.endpoints.length === 0) return '  (none)';
  return table([['ENDPOINT', 'IP', 'TUN', 'FROM-POD PKTS', 'TO-POD PKTS'],
    ...s.endpoints.map((e) => [e.name, e.ip, e.tun, String(e.rxPackets), String(e.txPackets)])]);
}

function peerTable(s: DaemonStats): string {
  if (s.peers.length === 0) return '  (none)';
  return table([['PEER', 'UNDERLAY', 'SUBNET'], ...s.peers.map((p) => [p.name, p.underlay, p.subnet])]);
}
