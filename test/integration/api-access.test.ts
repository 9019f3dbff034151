// The HTTP API answers only local clients unless told otherwise: a daemon
// listening on 0.0.0.0 in one namespace refuses a client in another one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, CLI, nodeIn, run } from './support/lab.js';
import { DAEMON_NODE_FLAGS } from '../../src/daemon/node-flags.js';

const skip = canRunNetworkTests();
const CONFIG = `
network: { Network: 10.244.0.0/16, SubnetLen: 24, MTU: 1500, Backend: { Type: udp } }
hosts:
  - { name: h1, publicIP: 10.251.0.1, subnet: 10.244.1.0/24 }
`;

const GET = (url: string) => `const r = await fetch('${url}'); process.stdout.write(String(r.status));`;

describe('API access control', { skip, concurrency: false }, () => {
  const id = process.pid % 100000;
  const a = `slapi${id}-a`, b = `slapi${id}-b`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-api-'));
  before(async () => {
    for (const ns of [a, b]) { await run('ip', ['netns', 'del', ns]); await run('ip', ['netns', 'add', ns]); }
    await run('ip', ['link', 'add', 'eth0', 'netns', a, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
    for (const [ns, ip] of [[a, '10.251.0.1/24'], [b, '10.251.0.2/24']]) {
      await run('ip', ['-n', ns, 'addr', 'add', ip, 'dev', 'eth0']);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    writeFileSync(join(dir, 'cluster.yaml'), CONFIG);
  });
  after(async () => {
    for (const ns of [a, b]) await run('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const allowRemote of [false, true]) {
    it(allowRemote ? 'answers remote clients with --api-allow-remote' : 'refuses remote clients, answers local ones', async () => {
      const ready = join(dir, `ready-${allowRemote}`);
      const child = spawn('ip', ['netns', 'exec', a, process.execPath, ...DAEMON_NODE_FLAGS, CLI, 'daemon', '--config', join(dir, 'cluster.yaml'),
        '--host', 'h1', '--ready-file', ready, '--api', '0.0.0.0:9765', ...(allowRemote ? ['--api-allow-remote'] : [])],
      { stdio: 'ignore' });
      const exited = new Promise((res) => child.on('exit', res));
      try {
        for (let i = 0; i < 100 && !existsSync(ready); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(existsSync(ready), 'daemon ready');
        const local = await nodeIn(a, GET('http://127.0.0.1:9765/healthz'));
        assert.equal(local.stdout, '200', local.stderr);
        const remote = await nodeIn(b, GET('http://10.251.0.1:9765/stats'));
        assert.equal(remote.stdout, allowRemote ? '200' : '403', remote.stderr);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });
  }
});
