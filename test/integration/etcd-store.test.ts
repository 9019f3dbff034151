// The etcd store against a real etcd: Flannel's config as Flannel writes it, validation naming the
// key, watch semantics (one transaction = one change, pods follow their host's lease), and an etcd
// outage: killed and restarted on the same data directory, the store says "degraded: store
// unreachable" meanwhile, keeps its last state, reconnects, resyncs, and changes made while it
// could not see etcd arrive.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { type EtcdLayout, makeLayout } from '../../src/store/etcd/keys.js';
import { EtcdServer, freePort } from '../../src/store/etcd-server.js';
import { EtcdStore, type StoreHealth, StoreError } from '../../src/store/etcd-store.js';
import type { StoreSnapshot } from '../../src/store/store.js';
import { createClient } from '../../src/store/etcd/client.js';
import { TestEtcd, skipWithoutEtcd, waitFor, writeClusterDoc } from './support/etcd.js';

let etcd: TestEtcd;
let admin: Etcd3;
let n = 0;
const stores: EtcdStore[] = [];

function fresh(): { l: EtcdLayout; store: (o?: { backoff?: { initialMs?: number; maxMs?: number } }) => EtcdStore } {
  n++;
  const l = makeLayout(`/s${n}/coreos.com/network`, `/s${n}/sluice/resources`);
  return {
    l,
    store: (o = {}) => {
      const s = new EtcdStore({ endpoints: etcd.url, prefix: l.prefix, resourcePrefix: l.resourcePrefix, ...o });
      stores.push(s);
      return s;
    },
  };
}

const pod = (name: string, node: string, ip: string, labels: Record<string, string> = {}) =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels }, spec: { nodeName: node }, status: { podIP: ip } });

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StoreError, `expected StoreError, got ${String(e)}`);
    return e.message;
  }
  return assert.fail('expected an error');
}

describe('etcd store (real etcd)', { skip: skipWithoutEtcd }, () => {
  before(async () => {
    etcd = await TestEtcd.start('store');
    admin = etcd.client();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await etcd?.close();
  });

  it("reads Flannel's config as Flannel writes it, with Flannel's defaults", async () => {
    const { l, store } = fresh();
    await admin.put(`${l.prefix}/config`).value(JSON.stringify({
      Network: '10.244.0.0/16', EnableNFTables: false, Backend: { Type: 'vxlan', DirectRouting: true, GBP: false },
    }));
    assert.deepEqual((await store().load()).config, { network: '10.244.0.0/16', subnetLen: 24, backend: { type: 'vxlan', port: 8472, vni: 1 } });
    // No Backend: Flannel's default is udp. Port 0: the backend's default. Small network: /n+2.
    await admin.put(`${l.prefix}/config`).value(JSON.stringify({ Network: '10.1.0.0/24' }));
    assert.deepEqual((await store().load()).config, { network: '10.1.0.0/24', subnetLen: 26, backend: { type: 'udp', port: 8285, vni: 1 } });
    await admin.put(`${l.prefix}/config`).value(JSON.stringify({ Network: '10.1.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:1::/48', Backend: { Type: 'vxlan', Port: 0, VNI: 4096 }, MTU: 9000 }));
    assert.deepEqual((await store().load()).config, {
      network: '10.1.0.0/16', subnetLen: 24, ipv6Network: 'fd00:1::/48', ipv6SubnetLen: 64, backend: { type: 'vxlan', port: 8472, vni: 4096 }, mtu: 9000,
    });
  });

  it('names the field and the key of every problem', async () => {
    const { l, store } = fresh();
    const cfgKey = `${l.prefix}/config`;
    assert.match(await errorOf(store().load()), new RegExp(`no network config at ${cfgKey}`));
    const bad: Array<[unknown, RegExp]> = [
      ['{"Network": "10.1.0.0/16",', /network: not valid JSON/],
      [{ Network: '10.1.0.0/16', Backend: { Type: 'host-gw' } }, /network\.Backend\.Type: unsupported backend "host-gw"; Sluice speaks vxlan and udp/],
      [{ Network: '10.1.0.0/16', SubnetLen: 31 }, /network\.SubnetLen: 31 is too long/],
      [{ Network: '10.1.0.0/16', SubnetMax: '10.2.0.0' }, /network\.SubnetMax: 10\.2\.0\.0 is not inside network 10\.1\.0\.0\/16/],
      [{ Network: '10.1.0.0/16', SubnetMin: '10.1.9.0', SubnetMax: '10.1.3.0' }, /network\.SubnetMin: 10\.1\.9\.0\/24 is after SubnetMax 10\.1\.3\.0\/24/],
      [{ Network: '10.1.0.0/16', EnableIPv4: false }, /network\.EnableIPv4: is false, but Sluice needs an IPv4 network/],
      [{ Network: '10.1.0.0/16', EnableIPv6: true }, /network\.IPv6Network: is missing but EnableIPv6 is true/],
      [{ Network: '10.1.0.1/16' }, /network\.Network: 10\.1\.0\.1\/16 has host bits set/],
    ];
    for (const [cfg, re] of bad) {
      await admin.put(cfgKey).value(typeof cfg === 'string' ? cfg : JSON.stringify(cfg));
      const msg = await errorOf(store().load());
      assert.match(msg, re);
      assert.ok(msg.startsWith(`etcd ${etcd.url}: `), msg);
      assert.ok(msg.endsWith(`(key ${cfgKey})`), msg);
    }

    await admin.put(cfgKey).value(JSON.stringify({ Network: '10.1.0.0/16', Backend: { Type: 'vxlan' } }));
    const lease = (ip: string, extra: Record<string, unknown> = {}) => JSON.stringify({ PublicIP: ip, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' }, ...extra });
    await admin.put(`${l.prefix}/subnets/10.1.1.0-24`).value('not json');
    assert.match(await errorOf(store().load()), new RegExp(`hosts\\[0\\]: lease value is not valid JSON: .* \\(key ${l.prefix}/subnets/10\\.1\\.1\\.0-24\\)`));
    await admin.put(`${l.prefix}/subnets/10.1.1.0-24`).value(lease('192.0.2.1', { BackendType: 'udp' }));
    assert.match(await errorOf(store().load()), /hosts\[0\]\.BackendType: "udp" does not match the network's backend "vxlan"; this host cannot be reached \(key .*10\.1\.1\.0-24\)/);
    await admin.put(`${l.prefix}/subnets/10.1.1.0-24`).value(lease('192.0.2.1'));
    await admin.put(`${l.prefix}/subnets/10.1.2.0-24`).value(lease('192.0.2.1', { BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:02' } }));
    assert.match(await errorOf(store().load()), /hosts\[1\]\.publicIP: publicIP 192\.0\.2\.1 is already used by hosts\[0\] \(key .*10\.1\.2\.0-24\)/);
    await admin.delete().key(`${l.prefix}/subnets/10.1.2.0-24`);
    await admin.put(`${l.prefix}/subnets/10.1.300.0-24`).value(lease('192.0.2.3'));
    assert.match(await errorOf(store().load()), /hosts\[1\]\.subnet: "10\.1\.300\.0\/24" is not an IPv4 CIDR/);
    await admin.delete().key(`${l.prefix}/subnets/10.1.300.0-24`);

    // Resources: stored under their own key, valid for the policy layer.
    const res = `${l.resourcePrefix}/networking.k8s.io/NetworkPolicy/default/p`;
    await admin.put(res).value(JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p' }, spec: { podSelecter: {} } }));
    assert.match(await errorOf(store().load()), new RegExp(`manifests\\[0\\]\\.spec\\.podSelecter: unknown field \\(key ${res}\\)`));
    await admin.put(res).value(JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'q' }, spec: {} }));
    assert.match(await errorOf(store().load()), /manifests\[0\]\.metadata: the manifest belongs under .*\/networking\.k8s\.io\/NetworkPolicy\/default\/q, not here/);
    await admin.delete().key(res);
    assert.equal((await store().load()).hosts.length, 1);
  });

  it('watch: one transaction is one change; pods are endpoints while their host holds a lease', async () => {
    const { l, store } = fresh();
    await writeClusterDoc(admin, { network: { Network: '10.2.0.0/16', Backend: { Type: 'vxlan' } }, hosts: [{ name: 'h1', publicIP: '192.0.2.1', subnet: '10.2.1.0/24' }] }, l);
    const s = store();
    const seen: StoreSnapshot[] = [];
    const errors: Error[] = [];
    s.watch((x) => seen.push(x), (e) => errors.push(e)); // no load(): the current state comes first
    await waitFor('the first snapshot', () => seen.length === 1);

    // A pod on h2, which has no lease yet: a manifest, not an endpoint (and not an error).
    await writeClusterDoc(admin, {
      network: { Network: '10.2.0.0/16', Backend: { Type: 'vxlan' } },
      hosts: [{ name: 'h1', publicIP: '192.0.2.1', subnet: '10.2.1.0/24' }],
      manifests: [pod('a', 'h1', '10.2.1.5', { app: 'a' }), pod('b', 'h2', '10.2.9.5')],
    }, l);
    await waitFor('the pods', () => seen.length === 2);
    assert.deepEqual(seen[1].endpoints.map((e) => `${e.name}@${e.host}`), ['a@h1']);
    assert.equal(seen[1].manifests.length, 2);

    // h2 comes up with a lease on 10.2.9.0/24: b becomes an endpoint.
    const m = await store().acquireLease({ publicIP: '192.0.2.2', hostName: 'h2', previousSubnet: '10.2.9.0/24', ttlSeconds: 30 });
    assert.equal(m.current()!.subnet, '10.2.9.0/24');
    await waitFor('b to be an endpoint', () => seen.at(-1)!.endpoints.length === 2);
    assert.deepEqual(seen.at(-1)!.endpoints.map((e) => `${e.name}@${e.host}`).sort(), ['a@h1', 'b@h2']);
    // Config, a host and a manifest changed together: seen as one change, never half of it.
    const before = seen.length;
    const tx = await admin.kv.txn({ success: [
      { request_put: { key: Buffer.from(`${l.prefix}/config`), value: Buffer.from(JSON.stringify({ Network: '10.2.0.0/16', Backend: { Type: 'vxlan' }, MTU: 1400 })) } },
      { request_delete_range: { key: Buffer.from(`${l.prefix}/subnets/10.2.1.0-24`) } },
      { request_delete_range: { key: Buffer.from(`${l.resourcePrefix}/core/Pod/default/a`) } },
    ] });
    assert.ok(tx.succeeded);
    await waitFor('the transaction', () => seen.length === before + 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(seen.length, before + 1);
    const last = seen.at(-1)!;
    assert.equal(last.config.mtu, 1400);
    assert.deepEqual(last.hosts.map((h) => h.name), ['h2']);
    assert.deepEqual(last.endpoints.map((e) => e.name), ['b']);
    assert.deepEqual(errors, []);
  });

  it('writers for the lab: config, a static host (reservation), manifests', async () => {
    const { l, store } = fresh();
    const s = store();
    await assert.rejects(s.putHost({ name: 'k', publicIP: '192.0.2.9', subnet: '10.4.9.0/24', vtepMAC: '02:00:00:00:00:09' }), /no network config at/);
    await assert.rejects(s.writeConfig({ network: '10.4.0.0/16', subnetLen: 31, backend: { type: 'vxlan', port: 8472, vni: 1 } }), /network\.SubnetLen: 31 is too long/);
    await s.writeConfig({ network: '10.4.0.0/16', subnetLen: 24, backend: { type: 'vxlan', port: 4789, vni: 42 } }, { subnetMin: '10.4.10.0' });
    assert.deepEqual(JSON.parse((await admin.get(`${l.prefix}/config`).string())!), {
      Network: '10.4.0.0/16', SubnetLen: 24, SubnetMin: '10.4.10.0', Backend: { Type: 'vxlan', Port: 4789, VNI: 42 },
    });
    await s.putHost({ name: 'kernel', publicIP: '192.0.2.9', subnet: '10.4.9.0/24', vtepMAC: '02:00:00:00:00:09' });
    const m = await s.acquireLease({ publicIP: '192.0.2.10', hostName: 'h1', ttlSeconds: 30 });
    const mine = m.current()!.subnet;
    const third = Number(mine.split('.')[2]);
    assert.ok(third >= 10, `${mine}: leases start at SubnetMin`);
    const res = await s.applyManifests([pod('a', 'h1', `10.4.${third}.5`), pod('k', 'kernel', '10.4.9.5')]);
    assert.deepEqual(res.map((r) => r.outcome), ['created', 'created']);
    await assert.rejects(s.applyManifests([pod('bad', 'h1', 'nope')]), /doc 1: status\.podIP: invalid IP address "nope"/);
    const snap = await s.load();
    assert.deepEqual(snap.hosts.map((h) => [h.name, h.subnet, h.vtepMAC]).sort(), [
      ['h1', mine, `02:00:0a:04:${third.toString(16).padStart(2, '0')}:00`], ['kernel', '10.4.9.0/24', '02:00:00:00:00:09'],
    ]);
    assert.deepEqual(snap.endpoints.map((e) => `${e.name}@${e.host}`), ['a@h1', 'k@kernel']);
    assert.deepEqual((await s.deleteManifests([pod('k', 'kernel', '10.4.9.5')])).map((r) => r.outcome), ['deleted']);
  });

  it('etcd killed and restarted on the same data dir: degraded meanwhile, then reconnect, resync, changes arrive', async () => {
    // An etcd of its own, so killing it does not disturb the other tests.
    const own = await TestEtcd.start('outage');
    try {
      const l = makeLayout();
      const client = own.client();
      await writeClusterDoc(client, { network: { Network: '10.3.0.0/16', Backend: { Type: 'vxlan' } }, manifests: [pod('a', 'h1', '10.3.1.5')] }, l);
      const s = new EtcdStore({ endpoints: own.url });
      stores.push(s);
      const lease = await s.acquireLease({ publicIP: '192.0.2.1', hostName: 'h1', previousSubnet: '10.3.1.0/24', ttlSeconds: 5 });
      const subnet = lease.current()!.subnet;
      assert.equal(subnet, '10.3.1.0/24');
      await s.load();
      const seen: StoreSnapshot[] = [];
      const errors: Error[] = [];
      const health: StoreHealth[] = [];
      s.onHealth((h) => health.push(h));
      s.watch((x) => seen.push(x), (e) => errors.push(e));
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(s.health(), { status: 'ok', reasons: [] });

      await own.server.kill();
      await waitFor('degraded', () => s.health().status === 'degraded', 5000);
      assert.deepEqual(s.health(), { status: 'degraded', reasons: ['store unreachable'] });
      assert.deepEqual(lease.current()?.subnet, subnet, 'the lease is still held meanwhile');

      // While the store cannot reach it, etcd runs (same data dir) on another port and is changed:
      // a policy is added, a pod moves. Then it comes back on its own port.
      const aside = await EtcdServer.start({ ...own.server.options, clientPort: await freePort() });
      try {
        const c2 = createClient({ endpoints: aside.url });
        const policy = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny', namespace: 'default' }, spec: { podSelector: {} } };
        await c2.put(`${l.resourcePrefix}/networking.k8s.io/NetworkPolicy/default/deny`).value(JSON.stringify(policy));
        await c2.put(`${l.resourcePrefix}/core/Pod/default/a`).value(JSON.stringify(pod('a', 'h1', '10.3.1.77')));
        c2.close();
      } finally {
        await aside.stop();
      }
      assert.equal(s.health().status, 'degraded');
      assert.equal(seen.length, 0, 'nothing new was seen while etcd was away');

      const back = Date.now();
      await own.server.restart();
      await waitFor('the resynced state', () => seen.length === 1, 15_000);
      const resynced = Date.now() - back;
      assert.deepEqual(seen[0].endpoints.map((e) => `${e.name} ${e.ip}`), ['a 10.3.1.77'], 'the pod changed meanwhile arrived');
      assert.ok(seen[0].manifests.some((m) => (m as { kind: string }).kind === 'NetworkPolicy'), 'the policy added meanwhile arrived');
      await waitFor('ok again', () => s.health().status === 'ok', 10_000);
      assert.deepEqual(health.map((h) => h.status), ['degraded', 'ok']);
      assert.deepEqual(errors, []);
      assert.equal(lease.current()?.subnet, subnet, 'the lease survived (etcd refreshes leases when it restarts)');
      assert.ok(await client.get(lease.current()!.key).exists());
      assert.ok(resynced < 8000, `resynced ${resynced} ms after etcd came back`);

      // And the watch goes on as before.
      await client.delete().key(`${l.resourcePrefix}/networking.k8s.io/NetworkPolicy/default/deny`);
      await waitFor('the deletion', () => seen.length === 2);
      assert.ok(!seen[1].manifests.some((m) => (m as { kind: string }).kind === 'NetworkPolicy'));
    } finally {
      await own.close();
    }
  });
});
