// Interop: a Linux kernel VXLAN "host" configured exactly as Flannel's vxlan backend configures
// the kernel, and a host running the Sluice daemon (vxlan backend), on one underlay bridge.
//
//   h1p (10.244.1.2) ─veth─ cni0 ─ h1: flannel.1 ─┐                 ┌─ h2: sluice daemon ─TUN─ h2p (10.244.2.2)
//                                                 └─ eth0 ── br0 (ul) ── eth0 ┘
//                                                   10.99.0.1           10.99.0.2
//
// Namespaces are named slkv-<pid>-{ul,h1,h1p,h2,h2p}, so concurrent runs never collide.
// Needs root, iproute2 (ip, bridge), ethtool, ping, and the kernel's vxlan, veth and bridge drivers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addKernelPod, addKernelVxlanPeer, setupKernelVxlanHost, type KernelVxlanHost } from '../../src/lab/kernel-vxlan.js';
import type { HostRecord, NetworkConfig } from '../../src/store/store.js';
import { writeClusterFile } from './helpers/cluster-file.js';
import { startDaemon } from './helpers/daemon.js';
import { ip } from './helpers/exec.js';
import { addNetns, attachToUnderlay, createUnderlay, listNetns, runPrefix, sweepStale } from './helpers/netns.js';
import type { Proc } from './helpers/process.js';
import { Scope } from './helpers/scope.js';
import { ping, tcpTransfer } from './helpers/traffic.js';

const PREFIX = 'slkv-';
const RUN = runPrefix(PREFIX);
const NS = { ul: `${RUN}ul`, h1: `${RUN}h1`, h1pod: `${RUN}h1p`, h2: `${RUN}h2`, h2pod: `${RUN}h2p` };
const H1: HostRecord = { name: 'h1', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', vtepMAC: '02:00:0a:f4:01:00' };
const H2: HostRecord = { name: 'h2', publicIP: '10.99.0.2', subnet: '10.244.2.0/24', vtepMAC: '02:00:0a:f4:02:00' };
const POD1 = '10.244.1.2';
const POD2 = '10.244.2.2';
const CONFIG: NetworkConfig = { network: '10.244.0.0/16', subnetLen: 24, backend: { type: 'vxlan', port: 8472, vni: 1 } };
const TCP_BYTES = 4 << 20;

const scope = new Scope();
let dir = '';
let kernel: KernelVxlanHost;
let daemon: Proc;

describe('kernel VXLAN (Flannel-style) host ⇄ Sluice host', { timeout: 120_000 }, () => {
  before(async () => {
    const stale = await sweepStale(PREFIX);
    if (stale.busy.length > 0) throw new Error(`namespaces of an earlier run still hold processes: ${stale.busy.join(', ')}`);
    dir = mkdtempSync(join(tmpdir(), 'slkv-'));
    scope.defer(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));

    await createUnderlay(scope, NS.ul);
    for (const [ns, port, h] of [[NS.h1, 'h1', H1], [NS.h2, 'h2', H2]] as const) {
      await addNetns(scope, ns);
      await attachToUnderlay(NS.ul, ns, { port, address: `${h.publicIP}/24` });
    }
    await addNetns(scope, NS.h1pod);
    await addNetns(scope, NS.h2pod);

    // h1: the kernel, wired as flanneld would; its underlay is a veth, so checksums must be
    // finished in software for a userspace peer (see underlayTxChecksumOffload).
    kernel = await setupKernelVxlanHost({ netns: NS.h1, self: H1, peers: [H2], config: CONFIG, underlayTxChecksumOffload: false });
    await addKernelPod(kernel, { netns: NS.h1pod, ip: POD1, hostVeth: 'vethp1' });

    // h2: Sluice, with h1 as a static peer.
    const configFile = join(dir, 'cluster.yaml');
    writeClusterFile(configFile, {
      network: CONFIG.network, subnetLen: 24, backend: 'vxlan',
      hosts: [H1, H2].map((h) => ({ name: h.name, publicIP: h.publicIP, subnet: h.subnet, vtepMAC: h.vtepMAC })),
      pods: [{ name: 'p2', host: 'h2', ip: POD2, netns: NS.h2pod }],
    });
    daemon = await startDaemon(scope, { netns: NS.h2, configFile, host: 'h2', dir });
  });

  after(async () => {
    const errors = await scope.close();
    const left = (await listNetns()).filter((n) => n.startsWith(RUN));
    assert.deepEqual(left, [], 'every namespace the test made is gone');
    assert.deepEqual(errors.map((e) => e.message), [], 'cleanup succeeded');
  });

  test('flannel.1 is a nolearning VXLAN device with Flannel\'s per-peer entries', async () => {
    const [link] = JSON.parse((await ip('-n', NS.h1, '-d', '-j', 'link', 'show', kernel.device)).stdout) as LinkJson[];
    const info = link.linkinfo.info_data;
    assert.equal(link.linkinfo.info_kind, 'vxlan');
    assert.equal(info.id, 1);
    assert.equal(info.port, 8472);
    assert.equal(info.learning, false);
    assert.equal(info.local, H1.publicIP);
    assert.equal(link.mtu, 1450);
    assert.equal(link.address, H1.vtepMAC);

    const neigh = (await ip('-n', NS.h1, 'neigh', 'show', 'dev', kernel.device)).stdout;
    assert.match(neigh, /^10\.244\.2\.0 lladdr 02:00:0a:f4:02:00 PERMANENT/m);
    const fdb = (await ip('netns', 'exec', NS.h1, 'bridge', 'fdb', 'show', 'dev', kernel.device)).stdout;
    assert.match(fdb, /^02:00:0a:f4:02:00 dst 10\.99\.0\.2 self permanent/m);
    const route = (await ip('-n', NS.h1, 'route', 'show', '10.244.2.0/24')).stdout;
    assert.match(route, /10\.244\.2\.0\/24 via 10\.244\.2\.0 dev flannel\.1 onlink/);
  });

  test('ping: kernel pod → Sluice pod', async () => {
    const r = await ping(NS.h1pod, POD2, { count: 5 });
    assert.equal(r.received, 5, `all 5 replies (got ${r.received})`);
  });

  test('ping: Sluice pod → kernel pod', async () => {
    const r = await ping(NS.h2pod, POD1, { count: 5 });
    assert.equal(r.received, 5, `all 5 replies (got ${r.received})`);
  });

  test('ping: Sluice pod → kernel host (flannel.1 address) and kernel host → Sluice pod', async () => {
    assert.equal((await ping(NS.h2pod, '10.244.1.0', { count: 3 })).received, 3);
    assert.equal((await ping(NS.h1, POD2, { count: 3 })).received, 3);
  });

  test('TCP: 4 MiB kernel pod → Sluice pod arrive intact', async () => {
    const r = await tcpTransfer(scope, { serverNs: NS.h2pod, serverIp: POD2, clientNs: NS.h1pod, port: 5001, bytes: TCP_BYTES, timeoutMs: 30_000 });
    assert.equal(r.sent.bytes, TCP_BYTES);
    assert.deepEqual(r.received, r.sent);
  });

  test('TCP: 4 MiB Sluice pod → kernel pod arrive intact', async () => {
    const r = await tcpTransfer(scope, { serverNs: NS.h1pod, serverIp: POD1, clientNs: NS.h2pod, port: 5002, bytes: TCP_BYTES, timeoutMs: 30_000 });
    assert.equal(r.sent.bytes, TCP_BYTES);
    assert.deepEqual(r.received, r.sent);
  });

  test('the traffic crossed the kernel VXLAN device both ways', async () => {
    const [link] = JSON.parse((await ip('-n', NS.h1, '-s', '-j', 'link', 'show', kernel.device)).stdout) as StatsJson[];
    // Two 4 MiB transfers: one arrived through flannel.1, the other left through it.
    assert.ok(link.stats64.rx.bytes > TCP_BYTES, `flannel.1 received ${link.stats64.rx.bytes} bytes`);
    assert.ok(link.stats64.tx.bytes > TCP_BYTES, `flannel.1 sent ${link.stats64.tx.bytes} bytes`);
    assert.equal(link.stats64.rx.errors, 0);
  });

  test('the daemon stops on SIGTERM and removes its TUN from the pod namespace', async () => {
    assert.equal(await daemon.stop(10_000), 'exited');
    assert.equal(daemon.exit?.code, 0, `daemon exit: ${JSON.stringify(daemon.exit)}\n${daemon.tail()}`);
    const links = JSON.parse((await ip('-n', NS.h2pod, '-j', 'link', 'show')).stdout) as { ifname: string }[];
    assert.deepEqual(links.map((l) => l.ifname), ['lo']);
  });

  // Flannel re-applies a lease's entries on every resync; replace semantics must not duplicate them.
  test('re-adding the peer entries is idempotent (Flannel re-applies them on resync)', async () => {
    await addKernelVxlanPeer(NS.h1, kernel.device, H2);
    const fdb = (await ip('netns', 'exec', NS.h1, 'bridge', 'fdb', 'show', 'dev', kernel.device)).stdout;
    assert.equal(fdb.match(/02:00:0a:f4:02:00 dst/g)?.length, 1, `one FDB entry for h2:\n${fdb}`);
  });
});

interface LinkJson {
  mtu: number;
  address: string;
  linkinfo: { info_kind: string; info_data: { id: number; port: number; learning: boolean; local: string } };
}

interface StatsJson {
  stats64: { rx: { bytes: number; errors: number }; tx: { bytes: number } };
}
