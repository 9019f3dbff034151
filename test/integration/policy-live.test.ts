// Live enforcement matches the offline prediction: the reachability matrix that
// `sluice policy matrix` computes from the manifests is exactly what real TCP and
// UDP connections between lab pods on two hosts do.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { canRunNetworkTests, Lab, nodeIn, ROOT, sluice, type RunResult } from './support/lab.js';

const skip = canRunNetworkTests();
const FIXTURE = join(ROOT, 'test', 'fixtures', 'live', 'policies.yaml');
const PORTS = [['TCP', 80], ['TCP', 81], ['UDP', 80]] as const;

interface Cell { from: string; to: string; protocol: string; port: number; allowed: boolean }

/** One process per pod serving TCP 80, TCP 81 and a UDP 80 echo on the pod's IP. */
const SERVER = (ip: string) => `
  import net from 'node:net'; import dgram from 'node:dgram';
  for (const port of [80, 81]) net.createServer((s) => s.end('ok')).listen(port, '${ip}');
  const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(80, '${ip}');
  setTimeout(() => process.exit(0), 60000);`;

/** Probes every target from one pod, concurrently; prints [{to, protocol, port, allowed}]. */
const PROBER = (targets: { name: string; ip: string }[]) => `
  import net from 'node:net'; import dgram from 'node:dgram';
  const targets = ${JSON.stringify(targets)}; const ports = ${JSON.stringify(PORTS)};
  const tcp = (ip, port) => new Promise((res) => { const s = net.connect(port, ip);
    const t = setTimeout(() => { s.destroy(); res(false); }, 2000);
    s.on('data', () => { clearTimeout(t); s.destroy(); res(true); }); s.on('error', () => { clearTimeout(t); res(false); }); });
  const udp = (ip, port) => new Promise((res) => { const s = dgram.createSocket('udp4'); let n = 0, done = false;
    const finish = (ok) => { if (done) return; done = true; clearTimeout(t); s.close(); res(ok); };
    const t = setTimeout(() => finish(false), 2000);
    s.on('message', () => finish(true));
    s.bind(0, () => { const send = () => { if (!done && n++ < 3) { s.send('probe', port, ip); setTimeout(send, 400); } }; send(); }); });
  const out = await Promise.all(targets.flatMap((t) => ports.map(async ([protocol, port]) =>
    ({ to: t.name, protocol, port, allowed: await (protocol === 'TCP' ? tcp : udp)(t.ip, port) }))));
  process.stdout.write(JSON.stringify(out));`;

describe('live policy enforcement matches `policy matrix`', { skip, concurrency: false }, () => {
  const name = `slpl${process.pid % 100000}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-live-'));
  let lab: Lab;
  let servers: Promise<RunResult>[] = [];
  before(async () => { lab = await Lab.up(name, ['-f', FIXTURE]); });
  after(async () => {
    await lab?.down();
    await Promise.allSettled(servers);
    rmSync(dir, { recursive: true, force: true });
  });

  it('every pod pair and port behaves as predicted', { timeout: 120_000 }, async () => {
    // The prediction, from the same manifests with the IPs the lab assigned.
    const docs = parseAllDocuments(readFileSync(FIXTURE, 'utf8')).map((d) => d.toJS() as Record<string, any>);
    for (const d of docs) {
      if (d.kind !== 'Pod') continue;
      d.status = { podIP: lab.pod(`${d.metadata.namespace}/${d.metadata.name}`).ip };
    }
    const withIps = join(dir, 'manifests.yaml');
    writeFileSync(withIps, docs.map((d) => stringify(d)).join('---\n'));
    const m = await sluice(['policy', 'matrix', '-f', withIps, '--ports', PORTS.map(([p, n]) => `${p}/${n}`).join(','), '--json']);
    assert.equal(m.code, 0, m.stderr);
    const predicted = (JSON.parse(m.stdout) as Cell[]).filter((c) => c.from !== c.to);
    assert.equal(predicted.length, 4 * 3 * PORTS.length);
    assert.ok(predicted.some((c) => c.allowed) && predicted.some((c) => !c.allowed), 'the fixture allows some and denies some');

    const pods = lab.json.pods;
    servers = pods.map((p) => nodeIn(p.netns, SERVER(p.ip), [], 70_000));
    await new Promise((r) => setTimeout(r, 1000));
    const observed: Cell[] = [];
    await Promise.all(pods.map(async (src) => {
      const targets = pods.filter((p) => p !== src).map((p) => ({ name: p.name, ip: p.ip }));
      const r = await nodeIn(src.netns, PROBER(targets), [], 30_000);
      assert.equal(r.code, 0, r.stderr);
      for (const c of JSON.parse(r.stdout) as Omit<Cell, 'from'>[]) observed.push({ from: src.name, ...c });
    }));
    const key = (c: Cell) => `${c.from} -> ${c.to} ${c.protocol}/${c.port}`;
    const want = new Map(predicted.map((c) => [key(c), c.allowed]));
    const mismatches = observed.filter((c) => want.get(key(c)) !== c.allowed)
      .map((c) => `${key(c)}: predicted ${want.get(key(c)) ? 'allowed' : 'denied'}, observed ${c.allowed ? 'allowed' : 'denied'}`);
    assert.equal(observed.length, predicted.length);
    assert.deepEqual(mismatches, []);
  });
});
