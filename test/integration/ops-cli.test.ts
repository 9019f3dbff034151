// The read commands against real daemons in a lab: status, peers, endpoints,
// policies, flows and trace, as text and --json, and the error when no daemon runs.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, CLI, inNetns, Lab, nodeIn, ROOT, sluice } from './support/lab.js';

const skip = canRunNetworkTests();

describe('operator commands', { skip, concurrency: false }, () => {
  const name = `slop${process.pid % 100000}`;
  let lab: Lab;
  const cli = (host: string, args: string[]) => inNetns(lab.host(host).netns, [process.execPath, CLI, ...args]);
  before(async () => { lab = await Lab.up(name, ['-f', join(ROOT, 'test', 'fixtures', 'live', 'policies.yaml')]); });
  after(async () => { await lab?.down(); });

  it('status shows health, endpoints and peers', async () => {
    const r = await cli('h1', ['status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.health.status, 'ok');
    assert.deepEqual(s.endpoints.map((e: { name: string }) => e.name).sort(), ['x/a', 'y/b']);
    assert.deepEqual(s.peers.map((p: { name: string }) => p.name), ['h2']);
    const text = await cli('h1', ['status']);
    assert.match(text.stdout, /health: ok/);
    assert.match(text.stdout, /x\/a\s+10\.244\.1\.\d+/);
  });

  it('policies lists what is in force, in evaluation order', async () => {
    const r = await cli('h2', ['policies', '--json']);
    const ids = JSON.parse(r.stdout).map((p: { id: string }) => p.id);
    assert.deepEqual(ids, ['GlobalNetworkPolicy/ya-from-b', 'CalicoNetworkPolicy/y/yb-no-udp', 'KubernetesNetworkPolicy/x/x-from-y-80']);
  });

  it('flows shows a denied flow with its counters, and --deny-only filters', async () => {
    const ya = lab.pod('y/a');
    const ping = await lab.exec('x/a', ['ping', '-c', '2', '-i', '0.2', '-W', '1', ya.ip]);
    assert.notEqual(ping.code, 0, 'y/a only admits TCP from pods labelled b');
    const r = await cli('h2', ['flows', '--deny-only', '--json']);
    const flows = JSON.parse(r.stdout) as { protocol: string; dst: string; verdict: string; packets: number }[];
    const f = flows.find((x) => x.dst === ya.ip && x.protocol === 'icmp');
    assert.ok(f, r.stdout);
    assert.equal(f.verdict, 'deny');
    assert.ok(f.packets >= 2);
    assert.ok(flows.every((x) => x.verdict === 'deny'));
  });

  it('/metrics has per-peer traffic, the store state, evaluation latency and the data path', async () => {
    // After the flows test: x/a on h1 sent pings to y/a on h2 (h2 denied them at ingress).
    const metrics = async (host: string) => {
      const r = await nodeIn(lab.host(host).netns, "const r = await fetch('http://127.0.0.1:9765/metrics'); process.stdout.write(await r.text());");
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      assert.ok(line, `${series} in\n${text}`);
      return Number(line.slice(series.length + 1));
    };
    const m1 = await metrics('h1'), m2 = await metrics('h2');
    assert.ok(value(m1, 'sluice_peer_packets_total{peer="h2",direction="tx"}') >= 2);
    assert.ok(value(m1, 'sluice_peer_bytes_total{peer="h2",direction="tx"}') >= 2 * 84);
    assert.ok(value(m2, 'sluice_peer_packets_total{peer="h1",direction="rx"}') >= 2);
    assert.equal(value(m2, 'sluice_store_state{state="ok"}'), 1);
    assert.equal(value(m2, 'sluice_store_state{state="degraded"}'), 0);
    assert.ok(value(m2, 'sluice_policy_evaluation_seconds_count{kind="new"}') >= 1, 'the new ICMP flow was evaluated');
    // The first ping waited for its verdict and was dropped by the gate, the second by the forwarder.
    assert.ok(value(m2, 'sluice_drops_total{reason="PolicyHeldDenied"}') >= 1);
    assert.ok(value(m2, 'sluice_drops_total{reason="PolicyDenied"}') + value(m2, 'sluice_drops_total{reason="PolicyHeldDenied"}') >= 2);
    assert.match(m2, /^sluice_fast_path\{kind="installs"\} \d+$/m);
    const st = JSON.parse((await cli('h2', ['status', '--json'])).stdout);
    assert.equal(st.store.status, 'ok');
    assert.equal(st.datapath.threads, 1);
    assert.ok(st.memory.rss > st.memory.heapUsed && st.memory.heapUsed > 0);
    assert.ok(value(m2, 'sluice_process_memory_bytes{kind="rss"}') > 10 * 1048576);
    assert.ok(st.peers[0].rxPackets >= 2);
  });

  it('trace gives the deciding policy and rule and the route, agreeing with policy check', async () => {
    const r = await cli('h1', ['trace', '--from', 'y/b', '--to', 'x/b', '--port', '80', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout);
    assert.equal(t.verdict.allowed, true);
    assert.equal(t.verdict.ingress.policy, 'KubernetesNetworkPolicy/x/x-from-y-80');
    assert.match(t.route.join('\n'), /vxlan overlay .*10\.99\.0\.1 → 10\.99\.0\.2:8472/);
    const denied = await cli('h1', ['trace', '--from', 'y/b', '--to', 'x/b', '--port', '81']);
    assert.match(denied.stdout, /ingress DENY\s+default-deny/);
    const bad = await cli('h1', ['trace', '--from', 'nope/x', '--to', 'x/b', '--port', '80']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--from nope\/x: no such pod/);
  });

  it('says how to start the daemon when none answers', async () => {
    const r = await sluice(['status', '--api', '127.0.0.1:9']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /daemon not running on 127\.0\.0\.1:9 .*start it with `sluice daemon --config FILE --host NAME --api 127\.0\.0\.1:9`/);
  });
});
