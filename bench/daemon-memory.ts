// Memory of a real daemon holding ~1,000,000 cached flows (issue 5: "under 150 MB RSS").
//
// A two-host lab; a pod on h1 sends one small UDP datagram to each of N distinct
// (address, port) pairs in h2's subnet, so h1's daemon decides (and caches) N
// new flows; h2 drops most of them (no such pod). Reports h1's RSS (and the
// anonymous part) idle, and once its flow cache holds the flows, and the flows
// per MiB. The flows arrive within the UDP idle timeout (60 s), paced to what
// the daemon admits (new flows beyond its pending limit are shed, not cached).
//
//   node dist/bench/daemon-memory.js [--flows 1000000] [--policy-mode pool|inline] [--name sdmem]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Lab, nodeIn, sluice } from '../test/integration/support/lab.js';

const { values } = parseArgs({
  options: {
    flows: { type: 'string', default: '1000000' },
    'policy-mode': { type: 'string', default: 'pool' },
    name: { type: 'string', default: 'sdmem' },
  },
});
const FLOWS = Number(values.flows);
if (!Number.isInteger(FLOWS) || FLOWS < 1) throw new Error(`--flows: expected a positive integer, got ${values.flows}`);

const mib = (kb: number) => (kb / 1024).toFixed(1);
function memory(pid: number): { rssKb: number; anonKb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)![1]);
  return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon') };
}

// Sends to every address .2-.254 of the subnet × as many ports as needed, in
// rounds of `perRound` datagrams, then waits for the daemon to catch up.
const SENDER = `
import { createSocket } from 'node:dgram';
const [prefix, total, perRound] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = createSocket('udp4');
const payload = Buffer.from('x');
let n = 0;
const hosts = 253;
while (n < total) {
  const end = Math.min(total, n + perRound);
  await new Promise((resolve) => {
    let left = end - n;
    for (; n < end; n++) {
      const host = 2 + (n % hosts), port = 1024 + Math.floor(n / hosts);
      s.send(payload, port, prefix + host, () => { if (--left === 0) resolve(); });
    }
  });
  await new Promise((r) => setTimeout(r, 250));
}
s.close();
console.log(n);`;

const lab = await Lab.up(values.name!, [`--daemon-arg=--policy-mode=${values['policy-mode']}`,
  `--daemon-arg=--flow-cache-size=${FLOWS}`]);
try {
  const status = JSON.parse((await sluice(['lab', 'status', '--name', values.name!, '--json'])).stdout) as
    { daemons: { host: string; pid: number }[] };
  const pid = status.daemons.find((d) => d.host === 'h1')!.pid;
  const pod = lab.json.pods.find((p) => p.host === 'h1')!;
  const subnet = lab.host('h2').subnet; // 10.244.2.0/24
  const prefix = subnet.replace(/\d+\/\d+$/, '');
  await new Promise((r) => setTimeout(r, 3000));
  const idle = memory(pid);
  const t0 = Date.now();
  const sent = await nodeIn(pod.netns, SENDER, [prefix, String(Math.ceil(FLOWS * 1.02)), '20000'], 300_000);
  if (sent.code !== 0) throw new Error(`sender failed: ${sent.stderr}`);
  const seconds = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 3000));
  const stats = await lab.stats('h1');
  const flows = stats.policy?.cache.flows ?? 0;
  const full = memory(pid);
  const perFlow = ((full.rssKb - idle.rssKb) * 1024) / Math.max(1, flows);
  process.stdout.write([
    `daemon memory (h1, --policy-mode ${values['policy-mode']}), ${new Date().toUTCString()}`,
    `| flows cached | RSS idle | RSS with the flows | anon idle → with flows | bytes/flow (RSS) | fill time |`,
    `|---|---|---|---|---|---|`,
    `| ${flows.toLocaleString('en-US')} | ${mib(idle.rssKb)} MiB | ${mib(full.rssKb)} MiB | ${mib(idle.anonKb)} → ${mib(full.anonKb)} MiB | ` +
      `${perFlow.toFixed(0)} | ${seconds.toFixed(1)} s |`,
    '',
  ].join('\n'));
} finally {
  await lab.down();
}
