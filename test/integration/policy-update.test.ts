// A policy change reaches established flows: after a NetworkPolicy denying
// ingress to b lands in the store, an open TCP connection to b stops within a
// second, while a connection to c (still allowed) carries on undisturbed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseClusterText, writeClusterFile } from '../../src/store/file-store.js';
import { canRunNetworkTests, Lab, nodeIn, ROOT } from './support/lab.js';
import { waitForListen } from './support/traffic.js';

const skip = canRunNetworkTests();
const STATE_ROOT = process.env.SLUICE_LAB_DIR ?? '/run/sluice-lab';

const ECHO = (ip: string, port: number) => `
  import net from 'node:net';
  net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); }).listen(${port}, '${ip}');
  setTimeout(() => process.exit(0), 20000);`;

/** Sends a line every 50 ms on two connections; prints the arrival times (ms since start) of the echoes. */
const CLIENT = (targets: { ip: string; port: number }[], runMs: number) => `
  import net from 'node:net';
  const t0 = Date.now(); const seen = ${JSON.stringify(targets)}.map(() => []);
  ${JSON.stringify(targets)}.forEach((t, i) => { const s = net.connect(t.port, t.ip);
    s.on('data', () => seen[i].push(Date.now() - t0)); s.on('error', () => {});
    const timer = setInterval(() => s.write('x'), 50); setTimeout(() => { clearInterval(timer); s.destroy(); }, ${runMs}); });
  setTimeout(() => { process.stdout.write(JSON.stringify({ t0, seen })); process.exit(0); }, ${runMs} + 100);`;

describe('policy updates reach established flows', { skip, concurrency: false }, () => {
  const name = `slpu${process.pid % 100000}`;
  let lab: Lab;
  before(async () => { lab = await Lab.up(name, ['-f', join(ROOT, 'test', 'fixtures', 'live', 'update.yaml')]); });
  after(async () => { await lab?.down(); });

  it('cuts the newly denied connection within 1 s and leaves the allowed one alone', { timeout: 60_000 }, async () => {
    const b = lab.pod('demo/b'), c = lab.pod('demo/c');
    const servers = [nodeIn(b.netns, ECHO(b.ip, 7100), [], 25_000), nodeIn(c.netns, ECHO(c.ip, 7101), [], 25_000)];
    await waitForListen(b.netns, 7100);
    await waitForListen(c.netns, 7101);
    const client = nodeIn(lab.pod('demo/a').netns, CLIENT([{ ip: b.ip, port: 7100 }, { ip: c.ip, port: 7101 }], 6000), [], 20_000);

    await new Promise((r) => setTimeout(r, 2500));
    const file = join(STATE_ROOT, name, 'cluster.yaml');
    const current = parseClusterText(readFileSync(file, 'utf8'), file);
    const manifests = [...current.manifests, {
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
      metadata: { name: 'isolate-db', namespace: 'demo' },
      spec: { podSelector: { matchLabels: { role: 'db' } }, policyTypes: ['Ingress'] },
    }];
    const appliedAt = Date.now();
    await writeClusterFile(file, { config: current.config, hosts: current.hosts, manifests });

    const r = await client;
    assert.equal(r.code, 0, r.stderr);
    const { t0, seen } = JSON.parse(r.stdout) as { t0: number; seen: [number[], number[]] };
    const applied = appliedAt - t0;
    const [toB, toC] = seen;
    assert.ok(toB.some((t) => t < applied), `b answered before the policy (applied at ${applied} ms; b: ${toB.slice(0, 5)}; c: ${toC.slice(0, 5)})`);
    const lastB = Math.max(...toB);
    assert.ok(lastB < applied + 1000, `b still answered ${lastB - applied} ms after the policy was applied`);
    assert.ok(toC.some((t) => t > applied + 2000), 'c keeps answering after the policy');
    const gaps = toC.slice(1).map((t, i) => t - toC[i]);
    assert.ok(Math.max(...gaps) < 1000, `c was disturbed: a ${Math.max(...gaps)} ms gap`);
    process.stderr.write(`# policy apply → last packet to b: ${lastB - applied} ms\n`);
    await Promise.allSettled(servers);
  });
});
