// Throughput with 10,000 policies loaded vs none, side by side in one run.
//
//   node dist/bench/policy-throughput.js [--policies 10000] [--seconds 5] [--repeat 3]
//
// Two labs at once, identical but for the manifests: "none" has only the pods,
// "loaded" adds N policies (Kubernetes NetworkPolicies and Calico policies spread
// over 100 namespaces, and some selecting the measured pods and allowing their
// traffic, so their flows are evaluated against policy). iperf3 TCP pod h1 → pod h2
// alternates between the labs each repetition; medians are reported. Established
// flows hit the flow cache, so the number of policies should not matter.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { Lab } from '../test/integration/support/lab.js';
import { median } from '../test/integration/helpers/traffic.js';

const { values } = parseArgs({ options: {
  policies: { type: 'string', default: '10000' }, seconds: { type: 'string', default: '5' }, repeat: { type: 'string', default: '3' },
} });
const N = Number(values.policies), SECONDS = Number(values.seconds), REPEAT = Number(values.repeat);

function manifests(policies: number): string {
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench', labels: { team: 'bench' } } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client', namespace: 'bench', labels: { app: 'client' } }, spec: { nodeName: 'h1' } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'server', namespace: 'bench', labels: { app: 'server' } }, spec: { nodeName: 'h2' } },
  ];
  for (let i = 0; i < policies; i++) {
    const ns = `ns${i % 100}`;
    if (i < 100) docs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { team: `t${i % 7}` } } });
    if (i % 1000 === 0) {
      // Some policies select the measured pods and allow the benchmark's traffic.
      docs.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `bench-allow-${i}`, namespace: 'bench' },
        spec: { podSelector: { matchLabels: { app: 'server' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 5201 + (i % 3) }] }] } });
    } else if (i % 2 === 0) {
      docs.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `p${i}`, namespace: ns },
        spec: { podSelector: { matchLabels: { app: `a${i % 50}` } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `t${i % 7}` } } }], ports: [{ port: 1000 + (i % 5000) }] }] } });
    } else {
      docs.push({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: `g${i}` },
        spec: { order: i % 2000, selector: `app == 'a${i % 50}'`, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [`${i % 3000}:${i % 3000 + 10}`] } }] } });
    }
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

async function iperf(lab: Lab): Promise<number> {
  const server = lab.pod('bench/server');
  await lab.exec('bench/server', ['iperf3', '-s', '-1', '-D', '-B', server.ip]);
  await new Promise((r) => setTimeout(r, 300));
  const r = await lab.exec('bench/client', ['iperf3', '-J', '-c', server.ip, '-t', String(SECONDS)], (SECONDS + 20) * 1000);
  if (r.code !== 0) throw new Error(`iperf3: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}


const dir = mkdtempSync(join(tmpdir(), 'sluice-polbench-'));
const labs: Lab[] = [];
try {
  const none = join(dir, 'none.yaml'), loaded = join(dir, 'loaded.yaml');
  writeFileSync(none, manifests(0));
  writeFileSync(loaded, manifests(N));
  process.stderr.write(`bringing up two labs (0 and ${N} policies)…\n`);
  labs.push(await Lab.up(`slpb0${process.pid % 10000}`, ['-f', none]));
  labs.push(await Lab.up(`slpb1${process.pid % 10000}`, ['-f', loaded, '--timeout', '120']));
  const results: number[][] = [[], []];
  for (let r = 0; r < REPEAT; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const gbps = await iperf(labs[i]);
      results[i].push(gbps);
      process.stderr.write(`rep ${r + 1}/${REPEAT} ${i === 0 ? 'no policies' : `${N} policies`}: ${gbps.toFixed(2)} Gbit/s\n`);
    }
  }
  const [m0, m1] = results.map(median);
  process.stdout.write([
    `| policies | TCP Gbit/s, median of ${REPEAT} (runs) |`, '|---|---|',
    `| 0 | ${m0.toFixed(2)} (${results[0].map((x) => x.toFixed(2)).join(', ')}) |`,
    `| ${N} | ${m1.toFixed(2)} (${results[1].map((x) => x.toFixed(2)).join(', ')}) |`,
    '', `ratio loaded/none: ${(m1 / m0).toFixed(3)} (of the medians); ` +
      // Each repetition runs the two labs back to back: their ratio is measured under the same load.
      `median of the per-repetition ratios: ${median(results[1].map((x, r) => x / results[0][r])).toFixed(3)}`, '',
  ].join('\n'));
} finally {
  for (const lab of labs) await lab.down().catch((e: Error) => process.stderr.write(`${e.message}\n`));
  rmSync(dir, { recursive: true, force: true });
}
