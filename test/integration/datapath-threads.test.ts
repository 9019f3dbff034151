// Two datapath threads (--datapath-threads 2) on a real two-host lab: each endpoint TUN has two
// queues, each daemon two underlay sockets (SO_REUSEPORT); thread 1 is a native thread forwarding
// decided flows against the same flow table as the JS thread, its misses handed to JS.
//
//   a (h1) ──► b, c (h2): ping, TCP (byte for byte) and UDP, both ways; flows whose hash picks
//   thread 0 and thread 1, so both threads carry traffic on both hosts (per-thread stats) — or, with
//   --no-main-fast-path, only the native thread carries decided flows (also with --busy-poll); a
//   policy change stops established flows on both threads; a daemon stops cleanly (SIGTERM).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DatapathThreadStats } from '../../src/native/binding.js';
import { parseClusterText, writeClusterFile } from '../../src/store/file-store.js';
import { canRunNetworkTests, Lab, nodeIn, ROOT } from './support/lab.js';
import { expectedSha256, PAYLOAD_SCRIPT, tcpTransfer, udpEcho, waitForListen } from './support/traffic.js';
import { threadOf } from './support/native.js';

const skip = canRunNetworkTests();
const STATE_ROOT = process.env.SLUICE_LAB_DIR ?? '/run/sluice-lab';

/** Local ports, from `from` up, whose flows to dst:dport land on thread 0 and on thread 1. */
function portsForBothThreads(src: string, dst: string, dport: number, from: number): [number, number] {
  const found: number[] = [-1, -1];
  for (let p = from; found.includes(-1); p++) if (found[threadOf(src, dst, p, dport)] < 0) found[threadOf(src, dst, p, dport)] = p;
  return [found[0], found[1]];
}

/** Sends `size` bytes from localPort to ip:port; the server (started first) prints the sha256. */
async function transferFrom(fromNetns: string, toNetns: string, ip: string, port: number, localPort: number, size: number, seed: number) {
  const server = nodeIn(toNetns, `
    import net from 'node:net'; import { createHash } from 'node:crypto';
    const srv = net.createServer((s) => { const h = createHash('sha256');
      s.on('data', (d) => h.update(d)); s.on('end', () => { process.stdout.write(h.digest('hex')); s.end(); srv.close(); }); });
    srv.listen(${port}, '${ip}'); setTimeout(() => process.exit(3), 25000).unref();`, [], 30_000);
  await waitForListen(toNetns, port);
  const client = await nodeIn(fromNetns, `
    import net from 'node:net'; ${PAYLOAD_SCRIPT(size, seed)}
    const s = net.connect({ port: ${port}, host: '${ip}', localPort: ${localPort} }, () => s.end(buf));
    s.on('error', (e) => { process.stderr.write(String(e)); process.exit(2); }); s.resume();`, [], 30_000);
  const srv = await server;
  return { sha: srv.stdout.trim(), client, server: srv };
}

const perThread = async (lab: Lab, host: string): Promise<DatapathThreadStats[]> => {
  const s = await lab.stats(host);
  const t = s.datapath?.fastPath?.perThread;
  assert.ok(t, `${host}: /stats has datapath.fastPath.perThread`);
  return t;
};

/** Long enough that a pod's answer to a ping is caught by it. */
const BUSY_POLL_US = 1000;

// spread: decided flows on both threads by their hash; main-off (--no-main-fast-path): only on the
// native one; busy-poll: main-off with --busy-poll.
for (const mode of ['spread', 'main-off', 'busy-poll'] as const) describe(`two datapath threads (${mode})`, { skip, concurrency: false }, () => {
  const name = `sdt${mode[0]}${process.pid % 100000}`;
  let lab: Lab;
  before(async () => {
    lab = await Lab.up(name, ['-f', join(ROOT, 'test', 'fixtures', 'live', 'update.yaml'), '--daemon-arg=--datapath-threads=2',
      ...(mode !== 'spread' ? ['--daemon-arg=--no-main-fast-path'] : []),
      ...(mode === 'busy-poll' ? [`--daemon-arg=--busy-poll=${BUSY_POLL_US}`] : [])]);
  });
  after(async () => { await lab?.down(); });

  it('runs two threads and two TUN queues per endpoint', async () => {
    for (const h of ['h1', 'h2']) {
      const s = await lab.stats(h);
      assert.equal(s.datapath?.threads, 2);
      assert.equal((await perThread(lab, h)).length, 2);
    }
  });

  it('pings both ways', async () => {
    const a = lab.pod('demo/a'), b = lab.pod('demo/b'), c = lab.pod('demo/c');
    for (const [from, to] of [[a, b], [b, a], [c, a]] as const) {
      const r = await lab.exec(from.name, ['ping', '-c', '5', '-i', '0.1', '-W', '2', to.ip]);
      assert.equal(r.code, 0, `${from.name} → ${to.name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /5 received/);
    }
    // Busy polling: a host that forwarded a ping on its native thread then caught the answer while
    // polling (without it, the counter stays 0).
    for (const h of ['h1', 'h2']) {
      const s = await lab.stats(h);
      const hits = (await perThread(lab, h))[1].busyPollHits;
      if (mode === 'busy-poll') {
        assert.equal(s.datapath?.busyPollUs, BUSY_POLL_US);
        assert.ok(hits > 0, `${h}: thread 1 found packets while busy polling (busyPollHits ${hits})`);
      } else {
        assert.equal(s.datapath?.busyPollUs, 0);
        assert.equal(hits, 0, `${h}: no busy polling without --busy-poll`);
      }
    }
  });

  it(`moves TCP streams intact both ways, ${mode === 'spread' ? 'on both threads' : 'on the native thread'} of both hosts`, { timeout: 120_000 }, async () => {
    const a = lab.pod('demo/a'), b = lab.pod('demo/b');
    const before = { h1: await perThread(lab, 'h1'), h2: await perThread(lab, 'h2') };
    const size = 4 << 20;
    // a → b from a port of each thread, then b → a.
    const [p0, p1] = portsForBothThreads(a.ip, b.ip, 7201, 41000);
    for (const [i, lp] of [p0, p1].entries()) {
      const r = await transferFrom(a.netns, b.netns, b.ip, 7201, lp, size, 11 + i);
      assert.equal(r.sha, expectedSha256(size, 11 + i), `a:${lp} → b: ${r.client.stderr}${r.server.stderr}`);
    }
    const back = await tcpTransfer(b.netns, a.netns, a.ip, 7202, size, 5);
    assert.equal(back.receivedSha, expectedSha256(size, 5), back.server.stderr + back.client.stderr);
    for (const h of ['h1', 'h2'] as const) {
      const now = await perThread(lab, h);
      const hits = now.map((t, i) => t.hits - before[h][i].hits);
      if (mode === 'spread') {
        assert.ok(hits[0] > 0 && hits[1] > 0, `${h}: native forwarding on both threads (hits per thread ${hits.join(', ')})`);
      } else {
        // Until a native thread wrote a flow to the TUN, its first packets come in on queue 0 (JS wrote them there).
        assert.ok(hits[1] > 0 && hits[0] * 10 < hits[1], `${h}: decided flows on the native thread (hits per thread ${hits.join(', ')})`);
      }
      assert.equal(now[1].ringDrops, 0, `${h}: no misses dropped on the way to JS`);
    }
  });

  it('echoes UDP both ways', async () => {
    const a = lab.pod('demo/a'), b = lab.pod('demo/b'), c = lab.pod('demo/c');
    const there = await udpEcho(a.netns, b.netns, b.ip, 7203, 200);
    assert.equal(there.echoed, 200, there.client.stderr);
    const back = await udpEcho(c.netns, a.netns, a.ip, 7204, 200);
    assert.equal(back.echoed, 200, back.client.stderr);
  });

  it('a policy change stops established flows on every thread; an allowed one carries on', { timeout: 60_000 }, async () => {
    const a = lab.pod('demo/a'), b = lab.pod('demo/b'), c = lab.pod('demo/c');
    const [p0, p1] = portsForBothThreads(a.ip, b.ip, 7300, 42000);
    const server = (ip: string, port: number, netns: string) => nodeIn(netns, `
      import net from 'node:net';
      net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); }).listen(${port}, '${ip}');
      setTimeout(() => process.exit(0), 20000);`, [], 25_000);
    const servers = [server(b.ip, 7300, b.netns), server(c.ip, 7301, c.netns)];
    await waitForListen(b.netns, 7300);
    await waitForListen(c.netns, 7301);
    const targets = [{ ip: b.ip, port: 7300, localPort: p0 }, { ip: b.ip, port: 7300, localPort: p1 }, { ip: c.ip, port: 7301, localPort: 0 }];
    const client = nodeIn(a.netns, `
      import net from 'node:net';
      const t0 = Date.now(); const targets = ${JSON.stringify(targets)}; const seen = targets.map(() => []);
      targets.forEach((t, i) => { const s = net.connect({ port: t.port, host: t.ip, ...(t.localPort ? { localPort: t.localPort } : {}) });
        s.on('data', () => seen[i].push(Date.now() - t0)); s.on('error', () => {});
        const timer = setInterval(() => s.write('x'), 20); setTimeout(() => { clearInterval(timer); s.destroy(); }, 6000); });
      setTimeout(() => { process.stdout.write(JSON.stringify(seen)); process.exit(0); }, 6100);`, [], 20_000);
    await new Promise((r) => setTimeout(r, 2500));
    const t0 = Date.now() - 2500;
    const file = join(STATE_ROOT, name, 'cluster.yaml');
    const current = parseClusterText(readFileSync(file, 'utf8'), file);
    const appliedAt = Date.now() - t0;
    await writeClusterFile(file, {
      config: current.config, hosts: current.hosts, manifests: [...current.manifests, {
        apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'isolate-db', namespace: 'demo' },
        spec: { podSelector: { matchLabels: { role: 'db' } }, policyTypes: ['Ingress'] },
      }],
    });
    const r = await client;
    assert.equal(r.code, 0, r.stderr);
    const [toB0, toB1, toC] = JSON.parse(r.stdout) as number[][];
    for (const [i, seen] of [toB0, toB1].entries()) {
      assert.ok(seen.some((t) => t < appliedAt - 500), `flow on thread ${i} answered before the policy`);
      const last = Math.max(...seen);
      // The client's clock started a little before t0: allow that, on top of the 1 s bound.
      assert.ok(last < appliedAt + 1500, `flow on thread ${i} still answered ${last - appliedAt} ms after the policy`);
    }
    assert.ok(toC.some((t) => t > appliedAt + 2000), 'the allowed flow to c carries on');
    const denied = await lab.stats('h2');
    assert.ok(denied.drops.PolicyDenied > 0, 'h2 counted policy denials');
    await Promise.allSettled(servers);
  });

  it('stops cleanly on SIGTERM: threads joined, devices gone, exit without errors', { timeout: 30_000 }, async () => {
    const state = JSON.parse(readFileSync(join(STATE_ROOT, name, 'state.json'), 'utf8')) as { daemons: { host: string; pid: number; log: string }[] };
    const d = state.daemons.find((x) => x.host === 'h1')!;
    process.kill(d.pid, 'SIGTERM');
    const end = Date.now() + 10_000;
    while (existsSync(`/proc/${d.pid}`) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!existsSync(`/proc/${d.pid}`), 'the daemon exited within 10 s');
    const log = readFileSync(d.log, 'utf8');
    assert.match(log, /shutting down/);
    assert.doesNotMatch(log, /shutdown failed|uncaught|"level":60/, log.slice(-2000));
    const link = await lab.exec('demo/a', ['ip', 'link', 'show', 'eth0']);
    assert.notEqual(link.code, 0, 'the endpoint device went with the daemon');
  });
});
