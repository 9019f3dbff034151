// The daemon needs only CAP_NET_ADMIN (for endpoints in its own namespace): run it
// with every other capability dropped, and see it fail clearly with none.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, CLI, nodeIn, run } from './support/lab.js';
import { DAEMON_NODE_FLAGS } from '../../src/daemon/node-flags.js';

const skip = canRunNetworkTests() || (!existsSync('/usr/bin/setpriv') && 'needs setpriv (util-linux)');
const CAP_NET_ADMIN = 12;

const CONFIG = `
network: { Network: 10.244.0.0/16, SubnetLen: 24, Backend: { Type: vxlan } }
hosts:
  - { name: h1, publicIP: 127.0.0.1, subnet: 10.244.1.0/24 }
manifests:
  - { apiVersion: v1, kind: Pod, metadata: { name: p, namespace: t }, spec: { nodeName: h1 }, status: { podIP: 10.244.1.2 } }
`;

/** Starts a daemon whose capabilities are limited to `keep` (e.g. ['net_admin'], or none). */
function daemon(ns: string, dir: string, keep: string[]) {
  const ready = join(dir, `ready-${keep.join('-') || 'none'}`);
  const caps = keep.map((c) => `,+${c}`).join('');
  const child = spawn('ip', ['netns', 'exec', ns, 'setpriv', `--bounding-set=-all${caps}`, `--inh-caps=-all${caps}`,
    ...(keep.length ? [`--ambient-caps=${keep.map((c) => `+${c}`).join(',')}`] : []), '--', process.execPath, ...DAEMON_NODE_FLAGS, CLI, 'daemon', '--config', join(dir, 'cluster.yaml'),
    '--host', 'h1', '--ready-file', ready], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { child, ready, exited, output: () => output };
}

describe('capabilities', { skip, concurrency: false }, () => {
  const ns = `slcap${process.pid % 100000}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-caps-'));
  before(async () => {
    await run('ip', ['netns', 'del', ns]);
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    writeFileSync(join(dir, 'cluster.yaml'), CONFIG);
  });
  after(async () => {
    await run('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs with CAP_NET_ADMIN alone', async () => {
    const d = daemon(ns, dir, ['net_admin']);
    try {
      for (let i = 0; i < 100 && !existsSync(d.ready); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(existsSync(d.ready), d.output());
      const capEff = BigInt('0x' + /CapEff:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${d.child.pid}/status`, 'utf8'))![1]);
      assert.equal(capEff, 1n << BigInt(CAP_NET_ADMIN), 'the daemon holds CAP_NET_ADMIN and nothing else');
      const addr = await run('ip', ['-n', ns, '-br', 'addr']);
      assert.match(addr.stdout, /^sl\S+\s+UNKNOWN\s+10\.244\.1\.2\/32/m, addr.stdout);
      const health = await nodeIn(ns, "const r = await fetch('http://127.0.0.1:9765/healthz'); process.stdout.write(String(r.status));");
      assert.equal(health.stdout, '200');
    } finally {
      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0, d.output());
    }
  });

  it('without CAP_NET_ADMIN refuses to start, naming the failing call', async () => {
    const d = daemon(ns, dir, []);
    assert.notEqual(await d.exited, 0);
    assert.match(d.output(), /EPERM: operation not permitted, ioctl\(TUNSETIFF\).*needs CAP_NET_ADMIN/);
  });
});
