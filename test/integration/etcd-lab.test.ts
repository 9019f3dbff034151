// An etcd lab end to end: `sluice lab up --store etcd` starts a real etcd on the underlay, the
// daemons lease their subnets from it, and everything after that goes through etcd:
//   - pods on two hosts, addressed in the subnets the hosts leased, reach each other;
//   - `sluice apply -f` of a policy stops an established cross-host flow within a second, on the
//     host that enforces it, without a restart; `sluice delete -f` lets it go on (timed: bench/RESULTS.md);
//   - etcd killed mid-traffic: pings and a TCP transfer go on untouched, hosts say "degraded: store
//     unreachable", and once etcd is back they resync and a change takes effect;
//   - a restarted host gets its subnet back (same lease key) and its pods work again;
//   - `lab down` stops etcd, also after a crash; with --etcd it takes its resources back out.
// Names start with slel<pid>.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { labDown } from '../../src/lab/down.js';
import { isRunning } from '../../src/lab/procs.js';
import { cidrContains, parseCidr, parseIp, type Cidr, type Ip } from '../../src/store/cidr.js';
import { createClient, listAll } from '../../src/store/etcd/client.js';
import { makeLayout } from '../../src/store/etcd/keys.js';
import { EtcdServer, freePort } from '../../src/store/etcd-server.js';
import { skipWithoutEtcd } from './support/etcd.js';
import {
  ECHO_CLIENT, ECHO_SERVER, type EtcdLabJson, PACED_RECEIVER, PACED_SENDER, Streamer, TCP_PROBE,
  daemonHealth, getHosts, sleep, sluiceStore, until,
} from './support/etcd-lab.js';
import { median } from './helpers/traffic.js';
import { canRunNetworkTests, CLI, inNetns, Lab, netnsWithPrefix, nodeIn, sluice } from './support/lab.js';
import { expectedSha256, tcpTransfer } from './support/traffic.js';

const skip = canRunNetworkTests() || skipWithoutEtcd;
const STATE_ROOT = process.env.SLUICE_LAB_DIR ?? '/run/sluice-lab';
const RUNS = 5;

const MANIFESTS = `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop, labels: { role: client } }
spec: { nodeName: h1 }
---
apiVersion: v1
kind: Pod
metadata: { name: server, namespace: shop, labels: { role: server } }
spec: { nodeName: h2 }
`;
const DENY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny-server, namespace: shop }
spec: { podSelector: { matchLabels: { role: server } }, policyTypes: [Ingress] }
`;

describe('lab --store etcd: leases, live policy, outages, restarts (real etcd, real daemons)', { skip, concurrency: false }, () => {
  const name = `slel${process.pid % 100000}`;
  let dir: string;
  let denyFile: string;
  let lab: Lab | undefined;
  let json: EtcdLabJson;
  const streamers: Streamer[] = [];
  const clients: Etcd3[] = [];
  const others: string[] = [];
  let external: EtcdServer | undefined;
  const track = (s: Streamer): Streamer => { streamers.push(s); return s; };
  const pod = (n: string) => lab!.pod(n);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slel-'));
    await writeFile(join(dir, 'pods.yaml'), MANIFESTS);
    denyFile = join(dir, 'deny.yaml');
    await writeFile(denyFile, DENY);
    lab = await Lab.up(name, ['--store', 'etcd', '-f', join(dir, 'pods.yaml')]);
    json = lab.json as EtcdLabJson;
    const echo = track(new Streamer(pod('shop/server').netns, ECHO_SERVER(pod('shop/server').ip, 7100)));
    await until('the echo server', () => echo.lines.includes('listening'));
  });

  after(async () => {
    for (const s of streamers) s.kill();
    for (const c of clients) c.close();
    // In-process as a fallback: the CLI may fail to start (e.g. while someone rebuilds the native addon).
    const down = async (n: string): Promise<void> => {
      if ((await sluice(['lab', 'down', '--name', n])).code !== 0) await labDown({ name: n, stateRoot: STATE_ROOT });
    };
    if (lab !== undefined) await down(name);
    for (const n of others) await down(n);
    await external?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('hosts lease distinct subnets from etcd; pods addressed in them reach each other across hosts', { timeout: 60_000 }, async () => {
    assert.equal(json.store, 'etcd');
    assert.equal(json.etcd.url, 'http://10.99.0.254:2379');
    assert.equal(json.etcd.netns, `${name}-ul`);
    const hosts = await getHosts(json);
    assert.deepEqual(hosts.map((h) => [h.name, h.publicIP]), [['h1', '10.99.0.1'], ['h2', '10.99.0.2']]);
    assert.notEqual(hosts[0].subnet, hosts[1].subnet);
    for (const h of hosts) {
      assert.ok(h.lease !== null && h.lease.ttlSeconds > 0, `${h.name} holds an etcd lease (not a reservation): ${JSON.stringify(h.lease)}`);
      assert.equal(h.key, `/coreos.com/network/subnets/${h.subnet.replace('/', '-')}`);
      assert.equal(lab!.host(h.name).subnet, h.subnet, 'the lab reports the leased subnet');
    }
    for (const p of json.pods) {
      const subnet = parseCidr(lab!.host(p.host).subnet, 4) as Cidr;
      assert.ok(cidrContains(subnet, parseIp(p.ip, 4) as Ip), `${p.name} ${p.ip} is in ${p.host}'s subnet ${subnet.text}`);
    }

    // The underlay is a `lab exec` target: the etcd URL the hosts use works there.
    const eps = await sluice(['lab', 'exec', '--name', name, 'ul', '--', process.execPath, CLI, 'get', 'endpoints', '--json', '--etcd', json.etcd.url]);
    assert.equal(eps.code, 0, eps.stderr);
    assert.deepEqual((JSON.parse(eps.stdout) as { name: string; ip: string }[]).map((e) => [e.name, e.ip]).sort(),
      json.pods.map((p) => [p.name.split('/')[1], p.ip]).sort());

    const client = pod('shop/client'), server = pod('shop/server');
    const ping = await inNetns(client.netns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', server.ip]);
    assert.equal(ping.code, 0, `ping ${server.ip}: ${ping.stdout}${ping.stderr}`);
    const t = await tcpTransfer(client.netns, server.netns, server.ip, 7001, 2 << 20, 11);
    assert.equal(t.receivedSha, expectedSha256(2 << 20, 11), `${t.client.stderr} ${t.server.stderr}`);
  });

  it('sluice apply -f stops an established cross-host flow within 1 s on the enforcing host; delete -f lets it go on', { timeout: 120_000 }, async (t) => {
    const client = pod('shop/client'), server = pod('shop/server');
    // The test watches etcd too: when the change became visible there is close to when the daemons saw it.
    const watcher = createClient({ endpoints: json.etcd.localUrl });
    clients.push(watcher);
    let seenAt = 0;
    const w = await watcher.watch().prefix('/sluice/resources/').create();
    w.on('put', () => { seenAt = Date.now(); });
    t.after(() => w.cancel()); // before etcd goes away: the client's watch reconnects would keep the test process alive

    const runs: Record<string, number>[] = [];
    for (let i = 0; i < RUNS; i++) {
      let last = 0, count = 0;
      const c = track(new Streamer(client.netns, ECHO_CLIENT(server.ip, 7100, 5), (l) => {
        if (l.startsWith('E ')) { last = Number(l.slice(2)); count++; }
      }));
      await until('echoes on a fresh connection', () => count >= 20, 5000);
      seenAt = 0;
      const t0 = Date.now();
      const ap = await sluiceStore(json, ['apply', '-f', denyFile]);
      const t1 = Date.now();
      assert.equal(ap.code, 0, ap.stderr);
      assert.match(ap.stdout, /NetworkPolicy\.networking\.k8s\.io shop\/deny-server created/);
      await until('the established flow to stop', () => Date.now() - last > 250, 3000);
      const stop = last;
      assert.ok(stop <= t1 + 1000, `run ${i}: echoes went on ${stop - t1} ms after apply returned`);
      const stoppedCount = count;
      await sleep(500);
      assert.equal(count, stoppedCount, `run ${i}: the flow came back while the policy was in place`);
      assert.ok(seenAt > 0, 'the test saw the policy in etcd');

      const del = await sluiceStore(json, ['delete', '-f', denyFile]);
      const t2 = Date.now();
      assert.equal(del.code, 0, del.stderr);
      await until('the same connection to carry on after delete', () => count > stoppedCount, 10_000);
      runs.push({
        applyMs: t1 - t0, afterApplyStart: stop - t0, afterApplyReturn: stop - t1, afterEtcdEvent: stop - seenAt,
        resumeAfterDelete: last - t2,
      });
      assert.ok(c.lines.every((l) => !l.startsWith('error')), `the connection survived: ${c.lines.filter((l) => l.startsWith('error'))}`);
      c.kill();
    }
    const m = (k: string) => median(runs.map((r) => r[k]));
    t.diagnostic(`apply→enforcement on the remote host, ${RUNS} runs: ${JSON.stringify(runs)}`);
    t.diagnostic(`medians (ms): apply command ${m('applyMs')}, last echo after apply start ${m('afterApplyStart')}, ` +
      `after apply returned ${m('afterApplyReturn')}, after the etcd event ${m('afterEtcdEvent')}, resume after delete ${m('resumeAfterDelete')}`);
  });

  it('etcd killed mid-traffic: traffic goes on, hosts degraded; after a restart they resync and a change takes effect', { timeout: 120_000 }, async () => {
    const client = pod('shop/client'), server = pod('shop/server');
    const h1 = lab!.host('h1'), h2 = lab!.host('h2');
    for (const h of [h1, h2]) assert.deepEqual(await daemonHealth(h.netns), { status: 'ok', reasons: [] });

    const CHUNKS = 200, SIZE = 32 << 10;
    const recv = track(new Streamer(server.netns, PACED_RECEIVER(server.ip, 7200)));
    await until('the receiver', () => recv.lines.includes('listening'));
    const send = track(new Streamer(client.netns, PACED_SENDER(server.ip, 7200, CHUNKS, SIZE, 50)));
    const ping = inNetns(client.netns, ['ping', '-i', '0.05', '-c', '200', '-W', '1', server.ip], 60_000).then((r) => ({ ...r, at: Date.now() }));
    await sleep(1000);

    const pid = json.etcd.pid!;
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), new RegExp(`etcd\\0.*${STATE_ROOT}/${name}/etcd`), 'the PID is the lab\'s etcd');
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    await until('both hosts to say degraded', async () =>
      (await daemonHealth(h1.netns)).status === 'degraded' && (await daemonHealth(h2.netns)).status === 'degraded', 10_000);
    const degraded = await daemonHealth(h1.netns);
    assert.ok(degraded.reasons.includes('store unreachable'), JSON.stringify(degraded));
    const st = await inNetns(h2.netns, [process.execPath, CLI, 'status']);
    assert.match(st.stdout, /^health: degraded \(store unreachable\)/m);
    const refused = await sluiceStore(json, ['apply', '-f', denyFile], 30_000);
    assert.equal(refused.code, 1, 'no change can be made while etcd is down');
    assert.match(refused.stderr, /cannot reach etcd/);
    await sleep(1000);

    const rs = await sluice(['lab', 'restart', '--name', name, 'etcd']);
    assert.equal(rs.code, 0, rs.stderr);
    const restartedAt = Date.now();
    assert.ok(restartedAt - killedAt >= 2000, `etcd was down ${restartedAt - killedAt} ms`);
    await until('both hosts healthy again', async () =>
      (await daemonHealth(h1.netns)).status === 'ok' && (await daemonHealth(h2.netns)).status === 'ok', 15_000);

    const p = await ping;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(p.stdout);
    assert.ok(m !== null, p.stdout + p.stderr);
    assert.deepEqual([Number(m[1]), Number(m[2])], [200, 200], 'no ping lost during the outage');
    assert.ok(p.at > restartedAt, 'the pings spanned the whole outage');
    assert.equal(await send.exited, 0, send.stderr + send.lines.join('\n'));
    await until('the transfer result', () => recv.lines.some((l) => l.startsWith('{')));
    const got = JSON.parse(recv.lines.find((l) => l.startsWith('{'))!) as { bytes: number; sha256: string; maxGapMs: number; endedAt: number };
    const want = createHash('sha256');
    for (let i = 0; i < CHUNKS; i++) want.update(Buffer.alloc(SIZE, i & 255));
    assert.deepEqual([got.bytes, got.sha256], [CHUNKS * SIZE, want.digest('hex')]);
    // etcd is down for 2 s or more: a transfer that waited for it would stall that long. (Not 0: a busy VM delays wake-ups.)
    assert.ok(got.maxGapMs < 1000, `the transfer stalled for ${got.maxGapMs} ms`);
    assert.ok(got.endedAt > restartedAt, 'the transfer spanned the whole outage');

    // A change made now reaches the hosts (they resynced), and so does taking it back.
    const probe = async () => (await nodeIn(client.netns, TCP_PROBE(server.ip, 7100, 700))).stdout;
    assert.equal(await probe(), 'ok');
    const ap = await sluiceStore(json, ['apply', '-f', denyFile]);
    assert.equal(ap.code, 0, ap.stderr);
    await until('the policy to deny new connections', async () => (await probe()) === 'fail', 5000);
    const del = await sluiceStore(json, ['delete', '-f', denyFile]);
    assert.equal(del.code, 0, del.stderr);
    await until('connections to be allowed again', async () => (await probe()) === 'ok', 5000);
  });

  it('a restarted host gets its subnet back (same lease key) and its pods work again', { timeout: 60_000 }, async () => {
    const before = await getHosts(json);
    const r = await sluice(['lab', 'restart', '--name', name, 'h2']);
    assert.equal(r.code, 0, r.stderr);
    const after = await getHosts(json);
    assert.deepEqual(after.map((h) => [h.name, h.key, h.subnet]), before.map((h) => [h.name, h.key, h.subnet]));
    assert.notEqual(after[1].lease?.id, before[1].lease?.id, 'h2 re-bound its key to a fresh etcd lease');
    assert.equal(after[0].lease?.id, before[0].lease?.id, 'h1 was not touched');
    const status = JSON.parse((await sluice(['lab', 'status', '--name', name, '--json'])).stdout) as { daemons: { host: string; pid: number; running: boolean }[] };
    const d2 = status.daemons.find((d) => d.host === 'h2')!;
    assert.ok(d2.running && d2.pid !== json.daemons.find((d) => d.host === 'h2')!.pid, 'a new h2 daemon runs');

    const client = pod('shop/client'), server = pod('shop/server');
    const ping = await inNetns(client.netns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', server.ip]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const t = await tcpTransfer(client.netns, server.netns, server.ip, 7002, 1 << 20, 12);
    assert.equal(t.receivedSha, expectedSha256(1 << 20, 12));
  });

  it('lab down stops etcd and the daemons and leaves nothing behind', { timeout: 60_000 }, async () => {
    const status = JSON.parse((await sluice(['lab', 'status', '--name', name, '--json'])).stdout) as EtcdLabJson & { etcd: { running: boolean } };
    assert.equal(status.etcd.running, true);
    const pids = [status.etcd.pid!, ...status.daemons.map((d) => d.pid)];
    for (const s of streamers) s.kill();
    await lab!.down();
    lab = undefined;
    for (const p of pids) assert.equal(isRunning(p), false, `pid ${p} still runs`);
    assert.deepEqual(await netnsWithPrefix(`${name}-`), []);
  });

  it('refuses --no-daemons (pods are addressed from the daemons\' leases) before creating anything', async () => {
    const r = await sluice(['lab', 'up', '--name', `${name}n`, '--store', 'etcd', '--no-daemons']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--no-daemons needs --store file/);
    assert.deepEqual(await netnsWithPrefix(`${name}n-`), []);
  });

  it('after a crash (no state file) lab down still stops etcd; with --etcd the lab uses that etcd and takes its resources back', { timeout: 90_000 }, async () => {
    const crashed = `${name}c`;
    others.push(crashed);
    const c = await Lab.up(crashed, ['--store', 'etcd', '--hosts', '1']);
    const etcdPid = (c.json as EtcdLabJson).etcd.pid!;
    unlinkSync(join(STATE_ROOT, crashed, 'state.json'));
    await c.down();
    assert.equal(isRunning(etcdPid), false, 'etcd was stopped by the namespace sweep');
    assert.deepEqual(await netnsWithPrefix(`${crashed}-`), []);

    external = await EtcdServer.start({ dataDir: join(dir, 'ext'), clientPort: await freePort(), peerPort: await freePort(), socketDir: dir });
    const shared = `${name}x`;
    others.push(shared);
    const x = await Lab.up(shared, ['--store', 'etcd', '--etcd', external.localUrl!, '--hosts', '1']);
    const xj = x.json as EtcdLabJson;
    assert.deepEqual([xj.etcd.url, xj.etcd.pid], [external.localUrl, undefined]);
    const ping = await x.exec('demo/h1-a', ['ping', '-c', '2', '-i', '0.2', '-W', '1', x.pod('demo/h1-b').ip]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const ext = createClient({ endpoints: external.localUrl! });
    clients.push(ext);
    assert.equal((await listAll(ext, makeLayout())).resources.length, 3, 'the namespace and two pods');
    await x.down();
    assert.deepEqual((await listAll(ext, makeLayout())).resources, [], 'lab down deleted what the lab applied');
    assert.ok(external.running, 'an etcd the lab did not start is left running');
  });
});
