// Persistent TUN devices (`sluice daemon --persist-tun`): restarting a host's
// daemon leaves its pods' interfaces, addresses and routes in place (the same
// device, same ifindex), and traffic resumes by itself — an established TCP
// connection across the restart keeps its socket and gets answers again.
// Without the flag the device goes with the daemon (the control).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { canRunNetworkTests, inNetns, Lab, nodeIn, sluice } from './support/lab.js';

const skip = canRunNetworkTests();

async function link(lab: Lab, pod: string): Promise<{ ifindex: number; addrs: string[] } | undefined> {
  const r = await inNetns(lab.pod(pod).netns, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']);
  if (r.code !== 0) return undefined;
  const [l] = JSON.parse(r.stdout) as { ifindex: number; addr_info: { local: string }[] }[];
  return { ifindex: l.ifindex, addrs: l.addr_info.map((a) => a.local) };
}

// A line-echo server, and a client that sends a numbered line every 50 ms for
// `ms` and prints, as JSON, when each answer came (ms since start) and whether
// the socket ever failed. One connection throughout.
const SERVER = `
import { createServer } from 'node:net';
const s = createServer((c) => c.on('data', (d) => c.write(d)).on('error', () => {}));
s.listen(7070, () => console.log('listening'));
setTimeout(() => process.exit(0), 18000);`;
const CLIENT = `
import { connect } from 'node:net';
const [host, ms] = [process.argv[1], Number(process.argv[2])];
const t0 = Date.now(); const answers = []; let error = null; let buf = '';
const c = connect(7070, host, () => {
  let n = 0;
  const t = setInterval(() => c.write('line ' + n++ + '\\n'), 50);
  setTimeout(() => { clearInterval(t); c.destroy(); console.log(JSON.stringify({ answers, error })); }, ms);
});
c.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { buf = buf.slice(i + 1); answers.push(Date.now() - t0); } });
c.on('error', (e) => { error = e.message; });`;

describe('persistent TUN devices across a daemon restart', { skip, concurrency: false }, () => {
  const name = `spt${process.pid % 10000}`;
  let lab: Lab | undefined;
  after(async () => { await lab?.down(); });

  it('--persist-tun: the pod keeps its interface and an open TCP connection resumes', { timeout: 150_000 }, async () => {
    lab = await Lab.up(name, ['--daemon-arg=--persist-tun']);
    const local = lab.json.pods.find((p) => p.host === 'h1')!;
    const remote = lab.json.pods.find((p) => p.host !== 'h1')!;
    const before = await link(lab, local.name);
    assert.ok(before, 'pod interface exists');

    const server = nodeIn(remote.netns, SERVER, [], 60_000);
    await new Promise((r) => setTimeout(r, 800));
    const t0 = Date.now();
    const client = nodeIn(local.netns, CLIENT, [remote.ip, '12000'], 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    const restartStart = Date.now() - t0;
    const rs = await sluice(['lab', 'restart', '--name', name, 'h1'], 60_000);
    assert.equal(rs.code, 0, rs.stderr);
    const restartEnd = Date.now() - t0;

    const afterRestart = await link(lab, local.name);
    assert.deepEqual(afterRestart, before, 'same device (ifindex) with the same addresses after the restart');
    const route = await inNetns(local.netns, ['ip', 'route', 'show', 'default']);
    assert.match(route.stdout, /default dev eth0/);

    const c = await client;
    assert.equal(c.code, 0, c.stderr);
    const { answers, error } = JSON.parse(c.stdout) as { answers: number[]; error: string | null };
    assert.equal(error, null, 'the TCP connection never failed');
    assert.ok(answers.some((t) => t < restartStart), 'answers before the restart');
    const resumed = answers.filter((t) => t > restartEnd);
    assert.ok(resumed.length >= 10, `answers resume after the restart (${resumed.length} after ${restartEnd} ms; restart began at ${restartStart} ms)`);
    await server.catch(() => undefined);

    // New connections work too: ping through the restarted daemon.
    const ping = await lab.exec(local.name, ['ping', '-c', '3', '-i', '0.2', '-W', '2', remote.ip]);
    assert.equal(ping.code, 0, ping.stdout);
    await lab.down();
    lab = undefined;
  });

  it('without --persist-tun the device goes with the daemon (a new one after the restart)', { timeout: 120_000 }, async () => {
    lab = await Lab.up(name);
    const pod = lab.json.pods.find((p) => p.host === 'h1')!;
    const before = await link(lab, pod.name);
    assert.ok(before);
    const rs = await sluice(['lab', 'restart', '--name', name, 'h1'], 60_000);
    assert.equal(rs.code, 0, rs.stderr);
    const afterRestart = await link(lab, pod.name);
    assert.ok(afterRestart);
    assert.notEqual(afterRestart.ifindex, before.ifindex, 'a fresh device');
    await lab.down();
    lab = undefined;
  });
});
