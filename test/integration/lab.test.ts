// Lab integration: real namespaces, veths and a bridge, built and torn down by the lab code.
// Daemons are not started here (--no-daemons) except fakes used to test failure and teardown
// paths; the end-to-end run with real daemons is lab-e2e.test.ts. Every name starts with
// sllt<pid> so parallel runs and a user's own lab never collide.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labDown } from '../../src/lab/down.js';
import { LabError } from '../../src/lab/errors.js';
import { procStartTime, isRunning } from '../../src/lab/procs.js';
import { listNetns } from '../../src/lab/run.js';
import { type LabState, loadState, saveState } from '../../src/lab/state.js';
import { labStatus } from '../../src/lab/status.js';
import { type UpOptions, labUp } from '../../src/lab/up.js';
import { FileStore } from '../../src/store/file-store.js';

const isRoot = process.getuid?.() === 0;
const hasIp = (() => { try { execFileSync('ip', ['-V']); return true; } catch { return false; } })();
const skip = !isRoot ? 'needs root' : !hasIp ? 'needs iproute2' : false;

const PREFIX = `sllt${process.pid}`;
let root: string;
const labs: string[] = [];
const children: ChildProcess[] = [];
let seq = 0;
const newLab = (): string => {
  const name = `${PREFIX}${String.fromCharCode(97 + seq++)}`;
  labs.push(name);
  return name;
};

const up = (name: string, extra: Partial<UpOptions> = {}): Promise<LabState> =>
  labUp({ name, hosts: 2, backend: 'vxlan', ipv6: false, files: [], daemons: false, stateRoot: root, ...extra });
const ipOut = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const ours = async (name: string): Promise<string[]> => (await listNetns()).filter((n) => n.startsWith(`${name}-`));
const ping = (ns: string, ip: string): boolean => {
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', ip], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
/** A process we start ourselves and track, so it is always ended. */
function startOwn(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  children.push(c);
  return c;
}
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('lab', { skip, concurrency: false }, () => {
  before(async () => { root = await mkdtemp(join(tmpdir(), 'sllt-labstate-')); });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const name of labs) await labDown({ name, stateRoot: root, graceMs: 1000 }).catch(() => {});
    await rm(root, { recursive: true, force: true });
  });

  it('up --no-daemons builds the underlay, hosts and pods; hosts reach each other over the bridge', async () => {
    const name = newLab();
    const state = await up(name);
    assert.equal(state.complete, true);
    assert.deepEqual((await ours(name)).sort(), [
      `${name}-demo-h1-a`, `${name}-demo-h1-b`, `${name}-demo-h2-a`, `${name}-demo-h2-b`, `${name}-h1`, `${name}-h2`, `${name}-ul`,
    ].sort());
    assert.deepEqual([...state.netns].sort(), (await ours(name)).sort()); // everything created is recorded
    assert.deepEqual(state.links, [
      { netns: `${name}-ul`, name: 'br0', kind: 'bridge' },
      { netns: `${name}-ul`, name: 'h1', kind: 'veth', peer: `${name}-h1/eth0` },
      { netns: `${name}-ul`, name: 'h2', kind: 'veth', peer: `${name}-h2/eth0` },
    ]);

    // The underlay: br0 with both host veths enslaved, addresses on the hosts' eth0.
    const ul = ipOut('-n', `${name}-ul`, '-o', 'link', 'show', 'master', 'br0');
    assert.match(ul, /\bh1@/);
    assert.match(ul, /\bh2@/);
    assert.match(ipOut('-n', `${name}-h1`, '-o', 'addr', 'show', 'dev', 'eth0'), /inet 10\.99\.0\.1\/24/);
    assert.match(ipOut('-n', `${name}-h2`, '-o', 'addr', 'show', 'dev', 'eth0'), /inet 10\.99\.0\.2\/24/);
    assert.ok(ping(`${name}-h1`, '10.99.0.2'), 'h1 -> h2 over the bridge');
    assert.ok(ping(`${name}-h2`, '10.99.0.1'), 'h2 -> h1 over the bridge');
    // Pods: lo up, nothing else (the daemon adds the TUN).
    const podLinks = ipOut('-n', `${name}-demo-h1-a`, '-o', 'link').trim().split('\n');
    assert.equal(podLinks.length, 1);
    assert.match(podLinks[0], /lo: <LOOPBACK,UP,LOWER_UP>/);
    assert.ok(ping(`${name}-demo-h1-a`, '127.0.0.1'));
    // Nothing in the root namespace points into our namespaces.
    assert.doesNotMatch(ipOut('-o', 'link'), new RegExp(`link-netns ${name}-`));

    // cluster.yaml is a valid store file whose endpoints are the lab's pods.
    const snap = await new FileStore(state.clusterFile).load();
    assert.deepEqual(snap.hosts.map((h) => [h.name, h.publicIP, h.subnet]), state.hosts.map((h) => [h.name, h.underlayIP, h.subnet]));
    assert.deepEqual(snap.endpoints.map((e) => [`${e.namespace}/${e.name}`, e.host, e.ip, e.netns]),
      state.pods.map((p) => [`${p.namespace}/${p.name}`, p.host, p.ip, p.netns]));

    await assert.rejects(up(name), (e: unknown) => e instanceof LabError && /already exists.*lab down --name/.test(e.message));

    const st = await labStatus(name, root);
    assert.deepEqual([st?.missingNetns, st?.strayNetns], [[], []]);

    const r = await labDown({ name, stateRoot: root });
    assert.equal(r.found, true);
    assert.equal(r.netnsDeleted.length, 7);
    assert.deepEqual(await ours(name), []);
    assert.equal(existsSync(join(root, name)), false);
    const again = await labDown({ name, stateRoot: root });
    assert.deepEqual([again.found, again.netnsDeleted], [false, []]);
  });

  it('the CLI prints the lab as JSON (--json --backend udp --ipv6 -f)', async () => {
    const name = newLab();
    const dir = await mkdtemp(join(tmpdir(), 'sllt-f-'));
    try {
      await writeFile(join(dir, 'pods.yaml'), [
        'apiVersion: v1\nkind: Pod\nmetadata: { name: server, namespace: web }\nspec: { nodeName: h2 }',
        'apiVersion: v1\nkind: Pod\nmetadata: { name: client, namespace: web }',
        'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: p, namespace: web }\nspec: { podSelector: {} }',
      ].join('\n---\n'));
      // The lab's commander commands, mounted on a bare program as the main CLI does.
      const driver = `import { Command } from 'commander'; import { registerLabCommands } from './dist/src/lab/cli.js';
        const p = new Command('sluice'); registerLabCommands(p); await p.parseAsync(process.argv.slice(1), { from: 'user' });`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', driver, '--', 'lab', 'up', '--name', name, '--no-daemons',
        '--json', '--backend', 'udp', '--ipv6', '--hosts', '3', '-f', join(dir, 'pods.yaml')],
        { encoding: 'utf8', cwd: process.cwd(), env: { ...process.env, SLUICE_LAB_DIR: root }, stdio: ['ignore', 'pipe', 'pipe'] });
      const j = JSON.parse(out);
      assert.equal(j.backend, 'udp');
      assert.equal(j.name, name);
      assert.equal(j.stateDir, join(root, name));
      assert.deepEqual(j.hosts.map((h: Record<string, string>) => Object.keys(h).sort()), Array(3).fill(['ipv6Subnet', 'name', 'netns', 'subnet', 'underlayIP']));
      assert.deepEqual(j.hosts[2], { name: 'h3', netns: `${name}-h3`, underlayIP: '10.99.0.3', subnet: '10.244.3.0/24', ipv6Subnet: 'fd00:10:244:3::/64' });
      assert.deepEqual(j.pods, [
        { name: 'web/server', host: 'h2', netns: `${name}-web-server`, ip: '10.244.2.2', ipv6: 'fd00:10:244:2::2' },
        { name: 'web/client', host: 'h1', netns: `${name}-web-client`, ip: '10.244.1.2', ipv6: 'fd00:10:244:1::2' },
      ]);
      assert.deepEqual(j.daemons, []);
      const snap = await new FileStore(j.clusterFile).load();
      assert.deepEqual(snap.config.backend, { type: 'udp', port: 8285, vni: 1 });
      assert.ok(snap.manifests.some((m) => (m as { kind: string }).kind === 'NetworkPolicy'));
      for (const p of j.pods) assert.ok((await listNetns()).includes(p.netns));

      // lab exec through the same CLI: exit code and namespace are the pod's.
      const exec = (args: string[]) => spawnSyncCode(process.execPath, ['--input-type=module', '-e', driver, '--', 'lab', 'exec', '--name', name, ...args], root);
      assert.equal(exec(['web/client', '--', 'sh', '-c', 'ip -o link | grep -c . | grep -qx 1 && exit 5']), 5);
      assert.equal(exec(['h1', '--', 'ping', '-c', '1', '-W', '1', '10.99.0.3']), 0);
      assert.equal(exec(['nosuch', '--', 'true']), 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await labDown({ name, stateRoot: root });
    }
    assert.deepEqual(await ours(name), []);
  });

  it('down after a crash: stops our processes, spares others, sweeps unrecorded namespaces', async () => {
    const name = newLab();
    const state = await up(name);
    // Stand-ins recorded as daemons (the real daemon is not part of this test):
    //  h1: alive, with the command line of a daemon of this lab -> must be stopped;
    //  h2: a daemon that crashed (kill -9) -> reported not running;
    //  h3: a live process whose command line is not our daemon's (a reused PID) -> must be spared.
    const fakeArgs = (host: string) => ['netns', 'exec', `${name}-${host}`, process.execPath, '-e', 'setInterval(() => {}, 1000)',
      state.cliPath, 'daemon', '--config', state.clusterFile, '--host', host];
    const d1 = startOwn('ip', fakeArgs('h1'));
    const d2 = startOwn('ip', fakeArgs('h2'));
    const other = startOwn('sleep', ['60']);
    const inPod = startOwn('ip', ['netns', 'exec', `${name}-demo-h2-b`, 'sleep', '60']); // e.g. a server started with lab exec
    await until('fakes running', () => [d1, d2, other, inPod].every((c) => c.pid !== undefined && procStartTime(c.pid) !== undefined)
      && (loadCmd(d1.pid!).includes(state.clusterFile)));
    const rec = (host: string, pid: number) => ({ host, pid, startTime: procStartTime(pid)!, log: join(state.stateDir, `${host}.log`) });
    const s = loadState(root, name)!;
    s.daemons = [rec('h1', d1.pid!), rec('h2', d2.pid!), rec('h3', other.pid!)];
    // A crash between creating a namespace and recording it: forget one pod namespace.
    s.netns = s.netns.filter((n) => n !== `${name}-demo-h1-b`);
    s.complete = false;
    saveState(s);
    d2.kill('SIGKILL');
    await until('h2 stand-in dead', () => !isRunning(d2.pid!));

    const r = await labDown({ name, stateRoot: root, graceMs: 2000 });
    assert.deepEqual(r.daemons.map((d) => [d.host, d.result]), [['h1', 'exited'], ['h2', 'not running'], ['h3', 'not running']]);
    assert.deepEqual(r.others, [inPod.pid]);
    await until('h1 stand-in gone', () => !isRunning(d1.pid!));
    assert.ok(isRunning(other.pid!), 'a process that is not ours was signalled');
    assert.ok(r.netnsDeleted.includes(`${name}-demo-h1-b`), 'the unrecorded namespace was swept');
    assert.deepEqual(await ours(name), []);
    assert.equal(existsSync(join(root, name)), false);
  });

  it('down without any state file (crash before it was written) sweeps by prefix', async () => {
    const name = newLab();
    const state = await up(name, { hosts: 1 });
    await unlink(join(state.stateDir, 'state.json'));
    const r = await labDown({ name, stateRoot: root });
    assert.equal(r.found, true);
    assert.equal(r.netnsDeleted.length, 4);
    assert.deepEqual(await ours(name), []);
    assert.equal(existsSync(state.stateDir), false);
  });

  it('down after `lab up` itself was killed -9 midway', async () => {
    const name = newLab();
    const script = `import { labUp } from './dist/src/lab/up.js';
      await labUp({ name: ${JSON.stringify(name)}, hosts: 8, backend: 'vxlan', ipv6: false, files: [], daemons: false,
        stateRoot: ${JSON.stringify(root)}, log: (m) => process.stderr.write(m + '\\n') });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let err = '';
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        if (err.includes('pod namespace')) { child.kill('SIGKILL'); resolve(); } // hosts made, pods starting
      });
      child.on('exit', () => resolve());
    });
    await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r));
    assert.equal(child.signalCode, 'SIGKILL', `up finished before it was killed: ${err}`);
    assert.ok((await ours(name)).length >= 5, 'the underlay and hosts existed at the crash');
    const s = loadState(root, name);
    assert.equal(s?.complete, false);
    await assert.rejects(up(name), /already exists/);
    const r = await labDown({ name, stateRoot: root });
    assert.ok(r.found);
    assert.deepEqual(await ours(name), []);
    assert.equal(existsSync(join(root, name)), false);
  });

  it('a daemon that fails or never gets ready: up reports its log and removes the lab', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sllt-cli-'));
    try {
      const failing = join(dir, 'failing.mjs');
      await writeFile(failing, 'console.error("boom: cannot open /dev/net/tun"); process.exit(3);\n');
      const name = newLab();
      await assert.rejects(up(name, { daemons: true, cliPath: failing, readyTimeoutMs: 10_000 }), (e: unknown) =>
        e instanceof LabError && /^host h\d: the daemon exited with code 3; last lines of .*h\d\.log:\n {2}\| boom: cannot open/.test(e.message));
      assert.deepEqual(await ours(name), []);
      assert.equal(existsSync(join(root, name)), false);

      // Never ready: it must also be stopped (it matches the recorded command line).
      const hanging = join(dir, 'hanging.mjs');
      await writeFile(hanging, 'console.log("argv", process.argv.slice(2).join(" ")); setInterval(() => {}, 1000);\n');
      await chmod(hanging, 0o644);
      const name2 = newLab();
      let pids: number[] = [];
      const log = (m: string) => { const x = /^started daemon h\d \(pid (\d+)/.exec(m); if (x) pids.push(Number(x[1])); };
      await assert.rejects(up(name2, { daemons: true, cliPath: hanging, readyTimeoutMs: 1000, log }), (e: unknown) =>
        e instanceof LabError && /the daemon was not ready after 1 s/.test(e.message)
        && new RegExp(`\\| argv daemon --config ${join(root, name2, 'cluster.yaml')} --host h1 --ready-file ${join(root, name2, 'h1.ready')}`).test(e.message));
      assert.equal(pids.length, 2);
      await until('daemons stopped', () => pids.every((p) => !isRunning(p)));
      assert.deepEqual(await ours(name2), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function loadCmd(pid: number): string {
  try {
    return execFileSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function spawnSyncCode(cmd: string, args: string[], stateRoot: string): number {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', env: { ...process.env, SLUICE_LAB_DIR: stateRoot } });
    return 0;
  } catch (e) {
    return (e as { status: number }).status;
  }
}
