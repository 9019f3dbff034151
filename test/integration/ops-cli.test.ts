// The read commands against real daemons in a lab: status, peers, endpoints,
// policies, flows and trace, as text and --json, and the error when no daemon runs.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, CLI, inNetns, Lab, ROOT, sluice } from './support/lab.js';

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
