// The daemon's lifecycle: it refuses a bad config naming the field, and a
// SIGTERM removes every device it made.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, CLI, run, sluice } from './support/lab.js';
import { DAEMON_NODE_FLAGS } from '../../src/daemon/node-flags.js';

const skip = canRunNetworkTests();

const cluster = (hostNs: string, podNs: string, subnet2 = '10.244.2.0/24') => `
network: { Network: 10.244.0.0/16, SubnetLen: 24, Backend: { Type: vxlan } }
hosts:
  - { name: h1, publicIP: 127.0.0.1, subnet: 10.244.1.0/24, vtepMAC: "02:00:0a:f4:01:00" }
  - { name: h2, publicIP: 127.0.0.2, subnet: ${subnet2}, vtepMAC: "02:00:0a:f4:02:00" }
manifests:
  - { apiVersion: v1, kind: Pod, metadata: { name: p, namespace: t, annotations: { sluice.io/netns: ${podNs} } }, spec: { nodeName: h1 }, status: { podIP: 10.244.1.2 } }
# host netns: ${hostNs}
`;

describe('daemon lifecycle', { skip, concurrency: false }, () => {
  const id = process.pid % 100000;
  const hostNs = `sldm${id}-h`, podNs = `sldm${id}-p`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-daemon-'));
  before(async () => {
    for (const ns of [hostNs, podNs]) {
      await run('ip', ['netns', 'del', ns]);
      assert.equal((await run('ip', ['netns', 'add', ns])).code, 0);
    }
    await run('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
  });
  after(async () => {
    for (const ns of [hostNs, podNs]) await run('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a config with a bad field, naming it', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, cluster(hostNs, podNs, '10.245.2.0/24'));
    const r = await sluice(['daemon', '--config', file, '--host', 'h1', '--api', 'off']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /hosts\[1\]\.subnet/);
  });

  it('refuses an unknown --host, listing the known ones', async () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, cluster(hostNs, podNs));
    const r = await sluice(['daemon', '--config', file, '--host', 'h9', '--api', 'off']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--host h9: no such host.*h1, h2/);
  });

  it('sets up the endpoint, and SIGTERM removes it and exits 0', async () => {
    const file = join(dir, 'good.yaml');
    const ready = join(dir, 'h1.ready');
    writeFileSync(file, cluster(hostNs, podNs));
    const child = spawn('ip', ['netns', 'exec', hostNs, process.execPath, ...DAEMON_NODE_FLAGS, CLI, 'daemon', '--config', file, '--host', 'h1',
      '--ready-file', ready, '--api', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      for (let i = 0; i < 100 && !existsSync(ready); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(existsSync(ready), `daemon ready: ${stderr}`);
      const addr = await run('ip', ['-n', podNs, '-br', 'addr', 'show', 'eth0']);
      assert.match(addr.stdout, /10\.244\.1\.2\/32/);
      const route = await run('ip', ['-n', podNs, 'route', 'show', 'default']);
      assert.match(route.stdout, /default dev eth0/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      const gone = await run('ip', ['-n', podNs, 'link', 'show', 'eth0']);
      assert.notEqual(gone.code, 0, 'the TUN is gone from the pod namespace');
      const links = await run('ip', ['-n', hostNs, '-br', 'link']);
      assert.doesNotMatch(links.stdout, /^sl/m, 'no TUN left in the host namespace');
      assert.ok(!existsSync(ready), 'the ready file is removed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
