// A SYN flood of new flows keeps the daemons' memory bounded (the flow cache is
// bounded, CLOCK eviction beyond) and established flows working.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, inNetns, Lab, nodeIn, ROOT, sluice } from './support/lab.js';
import { synFloodScript, waitForListen } from './support/traffic.js';

const skip = canRunNetworkTests();
const CACHE = 5000;
/** Held packets (--held-packets): small, so the flood overflows the held queue too. */
const HELD = 256;
const FLOWS = 60_000;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;


const ECHO_CLIENT = (ip: string, port: number, runMs: number) => `
  import net from 'node:net';
  const t0 = Date.now(); const seen = []; const s = net.connect(${port}, '${ip}');
  s.on('data', () => seen.push(Date.now() - t0)); s.on('error', (e) => process.stderr.write(String(e)));
  const timer = setInterval(() => s.write('x'), 50);
  setTimeout(() => { clearInterval(timer); s.destroy(); process.stdout.write(JSON.stringify(seen)); process.exit(0); }, ${runMs});`;

describe('SYN flood', { skip, concurrency: false }, () => {
  const name = `slsf${process.pid % 100000}`;
  let lab: Lab;
  before(async () => {
    lab = await Lab.up(name, ['-f', join(ROOT, 'test', 'fixtures', 'live', 'flood.yaml'), `--daemon-arg=--flow-cache-size=${CACHE}`,
      `--daemon-arg=--held-packets=${HELD}`]);
  });
  after(async () => { await lab?.down(); });

  it('keeps memory bounded and established flows working', { timeout: 120_000 }, async () => {
    const status = JSON.parse((await sluice(['lab', 'status', '--name', name, '--json'])).stdout) as { daemons: { host: string; pid: number }[] };
    const pids = status.daemons.map((d) => d.pid);
    const a = lab.pod('demo/a'), b = lab.pod('demo/b'), c = lab.pod('demo/c');
    const server = nodeIn(c.netns, `
      import net from 'node:net';
      net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); }).listen(7101, '${c.ip}');
      setTimeout(() => process.exit(0), 60000);`, [], 70_000);
    await waitForListen(c.netns, 7101);
    // Warm up: both daemons' flow caches and pools in use, then take the baseline.
    await lab.exec('demo/a', ['ping', '-c', '2', '-i', '0.2', b.ip]);
    const rssBefore = pids.map(rssMiB);

    const client = nodeIn(a.netns, ECHO_CLIENT(c.ip, 7101, 12_000), [], 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const flood = await inNetns(a.netns, ['python3', '-c', synFloodScript(a.ip, b.ip, FLOWS)], 90_000);
    assert.equal(flood.code, 0, flood.stderr);
    assert.ok(Number(flood.stdout) > FLOWS * 0.9, `sent ${flood.stdout}`);
    const echoes = JSON.parse((await client).stdout) as number[];

    for (const host of ['h1', 'h2']) {
      const policy = (await lab.stats(host)).policy!;
      assert.ok(policy.cache.flows <= CACHE, `${host}: ${policy.cache.flows} flows cached, cap ${CACHE}`);
      assert.equal(policy.held.capacity, HELD, `${host}: --held-packets sized the held queue`);
      assert.ok(policy.cache.evicted > FLOWS / 2, `${host}: the cache evicted ${policy.cache.evicted}`);
    }
    const growth = pids.map((pid, i) => rssMiB(pid) - rssBefore[i]);
    assert.ok(growth.every((g) => g < 64), `RSS growth (MiB) under the flood: ${growth.map((g) => g.toFixed(1)).join(', ')}`);
    assert.ok(echoes.length > 100, `established flow answered ${echoes.length} times`);
    const gaps = echoes.slice(1).map((t, i) => t - echoes[i]);
    assert.ok(Math.max(...gaps) < 1500, `established flow stalled for ${Math.max(...gaps)} ms`);
    process.stderr.write(`# RSS growth MiB: ${growth.map((g) => g.toFixed(1)).join(', ')}; longest echo gap ${Math.max(...gaps)} ms\n`);
    await server;
  });
});
