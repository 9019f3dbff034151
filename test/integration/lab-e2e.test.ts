// The lab end to end with the real daemon (dist/src/cli.js daemon): `lab up` for each backend,
// pings between pods on different hosts and on one host, `lab status`, then `lab down` leaves no
// namespace, process or state behind. Names start with sllt<pid>e.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CLI_PATH } from '../../src/lab/daemons.js';
import { labDown } from '../../src/lab/down.js';
import { isRunning } from '../../src/lab/procs.js';
import { listNetns } from '../../src/lab/run.js';
import { labStatus } from '../../src/lab/status.js';
import { labUp } from '../../src/lab/up.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root' : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : !existsSync(DEFAULT_CLI_PATH) ? `${DEFAULT_CLI_PATH} not built` : false;

const ping = (ns: string, ip: string): boolean => {
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '2', '-i', '0.2', '-W', '2', ip], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('lab with real daemons', { skip, concurrency: false }, () => {
  let root: string;
  const names: string[] = [];
  before(async () => { root = await mkdtemp(join(tmpdir(), 'sllt-e2e-')); });
  after(async () => {
    for (const name of names) await labDown({ name, stateRoot: root, graceMs: 2000 }).catch(() => {});
    await rm(root, { recursive: true, force: true });
  });

  for (const backend of ['vxlan', 'udp'] as const) {
    it(`up (${backend}), pods reach each other across and within hosts, down removes everything`, async () => {
      const name = `sllt${process.pid}${backend === 'vxlan' ? 'x' : 'u'}`;
      names.push(name);
      const state = await labUp({ name, hosts: 2, backend, ipv6: false, files: [], daemons: true, readyTimeoutMs: 30_000, stateRoot: root });
      const pids = state.daemons.map((d) => d.pid);
      assert.equal(pids.length, 2);
      const st = await labStatus(name, root);
      assert.deepEqual(st?.daemons.map((d) => d.running), [true, true]);

      const pod = (n: string) => state.pods.find((p) => p.name === n)!;
      assert.ok(ping(pod('h1-a').netns, pod('h2-a').ip), 'h1-a -> h2-a (across the overlay)');
      assert.ok(ping(pod('h2-b').netns, pod('h1-b').ip), 'h2-b -> h1-b (across the overlay)');
      assert.ok(ping(pod('h1-a').netns, pod('h1-b').ip), 'h1-a -> h1-b (same host)');

      const r = await labDown({ name, stateRoot: root });
      assert.deepEqual(r.daemons.map((d) => d.result), ['exited', 'exited']);
      for (const pid of pids) assert.equal(isRunning(pid), false);
      assert.deepEqual((await listNetns()).filter((n) => n.startsWith(`${name}-`)), []);
      assert.equal(existsSync(join(root, name)), false);
    });
  }
});
