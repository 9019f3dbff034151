// Subnet leases against a real etcd: Flannel's acquisition (atomic create, races retried, reuse by
// PublicIP), expiry and re-acquisition, and what a watching store sees of it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { type AcquireOptions, type Acquired, acquireSubnet } from '../../src/store/etcd/acquire.js';
import { type EtcdLayout, makeLayout } from '../../src/store/etcd/keys.js';
import { EtcdStore, StoreError } from '../../src/store/etcd-store.js';
import type { LeaseEvent } from '../../src/store/leases.js';
import type { StoreSnapshot } from '../../src/store/store.js';
import { TestEtcd, skipWithoutEtcd, waitFor } from './support/etcd.js';

let etcd: TestEtcd;
let admin: Etcd3;
let n = 0;

/** A fresh pair of prefixes per test, so tests share one etcd without seeing each other. */
function layoutFor(): EtcdLayout {
  n++;
  return makeLayout(`/t${n}/coreos.com/network`, `/t${n}/sluice/resources`);
}

async function putConfig(l: EtcdLayout, cfg: Record<string, unknown>): Promise<void> {
  await admin.put(`${l.prefix}/config`).value(JSON.stringify(cfg));
}

/** acquireSubnet, with the etcd lease it returns released after the tests (its keepalives stop). */
const held: Acquired[] = [];
async function acquire(c: Etcd3, l: EtcdLayout, o: AcquireOptions): Promise<Acquired> {
  const a = await acquireSubnet(c, l, o, 'test');
  held.push(a);
  return a;
}

const stores: EtcdStore[] = [];
function store(l: EtcdLayout, o: { backoff?: { initialMs?: number; maxMs?: number } } = {}): EtcdStore {
  const s = new EtcdStore({ endpoints: etcd.url, prefix: l.prefix, resourcePrefix: l.resourcePrefix, ...o });
  stores.push(s);
  return s;
}

describe('subnet leases (real etcd)', { skip: skipWithoutEtcd }, () => {
  before(async () => {
    etcd = await TestEtcd.start('leases');
    admin = etcd.client();
  });
  after(async () => {
    for (const s of stores) await s.close();
    for (const a of held) a.etcdLease?.release();
    await etcd?.close();
  });

  it('8 hosts starting at once get 8 distinct subnets (random picks, Flannel style)', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const clients = Array.from({ length: 8 }, () => etcd.client());
    const got = await Promise.all(clients.map((c, i) => acquire(c, l, { publicIP: `192.0.2.${i + 1}`, hostName: `h${i + 1}`, ttlSeconds: 30 })));
    const subnets = got.map((g) => g.lease.subnet);
    assert.equal(new Set(subnets).size, 8, `duplicates in ${subnets.join(' ')}`);
    for (const s of subnets) assert.match(s, /^10\.5\.\d+\.0\/24$/);
    assert.ok(!subnets.includes('10.5.0.0/24'), 'the first subnet is skipped (SubnetMin default)');
    const keys = (await admin.getAll().prefix(`${l.prefix}/subnets/`).keys()).sort();
    assert.deepEqual(keys, got.map((g) => g.lease.key).sort());
    const snap = await store(l).load();
    assert.deepEqual(snap.hosts.map((h) => h.name).sort(), ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']);
  });

  it('races for the same subnet are retried: 8 hosts all trying the first free one still end up distinct', async () => {
    const l = layoutFor();
    // Exactly 8 subnets to lease (10.5.0.16/28 .. 10.5.0.128/28), and everyone picks the first free one.
    await putConfig(l, { Network: '10.5.0.0/24', SubnetLen: 28, SubnetMin: '10.5.0.16', SubnetMax: '10.5.0.128', Backend: { Type: 'vxlan' } });
    const clients = Array.from({ length: 8 }, () => etcd.client());
    const got = await Promise.all(clients.map((c, i) => acquire(c, l, { publicIP: `192.0.2.${i + 1}`, ttlSeconds: 30, choose: () => 0 })));
    const subnets = got.map((g) => g.lease.subnet).sort();
    assert.deepEqual(subnets, ['10.5.0.112/28', '10.5.0.128/28', '10.5.0.16/28', '10.5.0.32/28', '10.5.0.48/28', '10.5.0.64/28', '10.5.0.80/28', '10.5.0.96/28']);
    const attempts = got.map((g) => g.lease.attempts);
    assert.ok(attempts.some((a) => a > 1), `expected lost races to be retried, attempts: ${attempts.join(',')}`);
    assert.ok(Math.max(...attempts) <= 8, `a host loses at most once per other host: ${attempts.join(',')}`);

    // Full: the next host is told so, by name.
    await assert.rejects(acquire(admin, l, { publicIP: '192.0.2.99' }),
      (e: unknown) => e instanceof StoreError && /out of subnets: every \/28 from 10\.5\.0\.16\/28 to 10\.5\.0\.128\/28 is leased/.test(e.message));
  });

  it('two hosts racing for the last subnet: exactly one gets it', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.6.0.0/24', SubnetLen: 28, SubnetMin: '10.6.0.16', SubnetMax: '10.6.0.16', Backend: { Type: 'vxlan' } });
    const results = await Promise.allSettled([etcd.client(), etcd.client()].map((c, i) => acquire(c, l, { publicIP: `192.0.2.${i + 1}`, ttlSeconds: 30 })));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.match(String(lost[0].reason), /out of subnets/);
    assert.equal((await admin.getAll().prefix(`${l.prefix}/subnets/`).keys()).length, 1);
  });

  it('a restarted host gets its own subnet back, on a fresh etcd lease', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.7.0.0/16', Backend: { Type: 'vxlan', VNI: 7 } });
    const s1 = store(l);
    const m1 = await s1.acquireLease({ publicIP: '192.0.2.10', hostName: 'alpha', ttlSeconds: 30 });
    const first = m1.current()!;
    assert.equal(first.reused, false);
    assert.equal(first.host.vtepMAC, `02:00:${first.subnet.split('/')[0].split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join(':')}`);
    const value = JSON.parse((await admin.get(first.key).string())!);
    assert.deepEqual(value, { PublicIP: '192.0.2.10', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 7, VtepMAC: first.host.vtepMAC }, SluiceHost: 'alpha' });
    await s1.close(); // the daemon stops (or dies): the key stays until its TTL runs out

    assert.ok(await admin.get(first.key).exists());
    const m2 = await store(l).acquireLease({ publicIP: '192.0.2.10', hostName: 'alpha', vtepMAC: '02:AA:00:00:00:01', ttlSeconds: 30 });
    const again = m2.current()!;
    assert.equal(again.subnet, first.subnet);
    assert.equal(again.key, first.key);
    assert.equal(again.reused, true);
    assert.notEqual(again.leaseId, first.leaseId);
    assert.equal(again.host.vtepMAC, '02:aa:00:00:00:01', 'the value is rewritten with the new attributes');
    // The old etcd lease was revoked rather than left to expire.
    const old = await admin.leaseClient.leaseTimeToLive({ ID: first.leaseId });
    assert.equal(Number(old.TTL), -1);
  });

  it('lease expiry removes the host key, and a watching store sees the peer disappear', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.8.0.0/16', Backend: { Type: 'vxlan' } });
    const self = await store(l).acquireLease({ publicIP: '192.0.2.1', hostName: 'self', ttlSeconds: 30 });
    const peerStore = store(l);
    const peer = await peerStore.acquireLease({ publicIP: '192.0.2.2', hostName: 'peer', ttlSeconds: 2 });
    const peerKey = peer.current()!.key;

    const watcher = store(l);
    const seen: StoreSnapshot[] = [];
    watcher.watch((s) => seen.push(s), (e) => assert.fail(e));
    await waitFor('both hosts', () => seen.at(-1)?.hosts.length === 2);

    // The peer dies without revoking: keepalives stop and etcd expires the key after the TTL.
    await peerStore.close();
    const t0 = Date.now();
    await waitFor('the peer to disappear', () => seen.at(-1)?.hosts.length === 1, 8000);
    const took = Date.now() - t0;
    assert.deepEqual(seen.at(-1)!.hosts.map((h) => h.name), ['self']);
    assert.ok(took < 5000, `expired after ${took} ms with a 2 s TTL`);
    assert.equal(await admin.get(peerKey).exists(), false);
    assert.equal(self.health().status, 'ok');
  });

  it('a lease that is lost (revoked / expired in etcd) is re-acquired, with the same subnet', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.9.0.0/16', Backend: { Type: 'vxlan' } });
    const s = store(l, { backoff: { initialMs: 50, maxMs: 500 } });
    const m = await s.acquireLease({ publicIP: '192.0.2.3', hostName: 'gamma', ttlSeconds: 3 });
    const before = m.current()!;
    const events: LeaseEvent[] = [];
    m.onEvent((e) => events.push(e));
    const health: string[] = [];
    s.onHealth((h) => health.push(h.status === 'ok' ? 'ok' : `degraded: ${h.reasons.join(', ')}`));

    await admin.leaseClient.leaseRevoke({ ID: before.leaseId }); // the key goes with it
    await waitFor('re-acquisition', () => events.some((e) => e.type === 'acquired'));
    const now = m.current()!;
    assert.equal(now.subnet, before.subnet);
    assert.notEqual(now.leaseId, before.leaseId);
    assert.equal(now.reused, false, 'the old key was gone: created again, on the subnet held before since it was free');
    assert.deepEqual(events.map((e) => e.type), ['lost', 'degraded', 'acquired', 'recovered']);
    assert.deepEqual(events.find((e) => e.type === 'acquired'), { type: 'acquired', lease: now, changed: false });
    assert.ok(await admin.get(now.key).exists());
    assert.deepEqual(health, ['degraded: subnet lease lost; re-acquiring', 'ok']);
    assert.deepEqual(s.health(), { status: 'ok', reasons: [] });

    // Deleting the key by hand has the same effect (Flannel: "Lease has been revoked").
    events.length = 0;
    await admin.delete().key(now.key);
    await waitFor('second re-acquisition', () => events.some((e) => e.type === 'acquired'));
    assert.equal(m.current()!.subnet, before.subnet);
  });

  it('shares etcd with Flannel: its leases are hosts (named by IP), its subnets are never handed out', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.10.0.0/16', SubnetMin: '10.10.1.0', SubnetMax: '10.10.2.0', Backend: { Type: 'vxlan', VNI: 1, DirectRouting: false }, EnableNFTables: false });
    // What flanneld v0.2x writes (with an etcd lease; here a reservation, which Flannel also honours).
    await admin.put(`${l.prefix}/subnets/10.10.1.0-24`).value(JSON.stringify({ PublicIP: '192.0.2.50', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } }));
    const m = await store(l).acquireLease({ publicIP: '192.0.2.51', hostName: 'sluice-1', ttlSeconds: 30 });
    assert.equal(m.current()!.subnet, '10.10.2.0/24');
    const snap = await store(l).load();
    assert.deepEqual(snap.config.backend, { type: 'vxlan', port: 8472, vni: 1 });
    assert.deepEqual(snap.hosts, [
      { name: '192.0.2.50', publicIP: '192.0.2.50', subnet: '10.10.1.0/24', vtepMAC: 'c6:d2:32:6f:8f:44' },
      { name: 'sluice-1', publicIP: '192.0.2.51', subnet: '10.10.2.0/24', vtepMAC: '02:00:0a:0a:02:00' },
    ]);
  });

  it('a reservation (a lease key without a TTL) for our PublicIP is used as is and stays permanent', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.11.0.0/16', Backend: { Type: 'udp' } });
    await admin.put(`${l.prefix}/subnets/10.11.42.0-24`).value(JSON.stringify({ PublicIP: '192.0.2.60', BackendType: 'udp' }));
    const m = await store(l).acquireLease({ publicIP: '192.0.2.60', hostName: 'reserved', ttlSeconds: 30 });
    assert.equal(m.current()!.subnet, '10.11.42.0/24');
    assert.equal(m.current()!.leaseId, '0');
    assert.equal(m.current()!.reused, true);
    const kv = await admin.get(`${l.prefix}/subnets/10.11.42.0-24`).exec();
    assert.equal(String(kv.kvs[0].lease), '0');
    assert.equal(JSON.parse(kv.kvs[0].value.toString()).SluiceHost, 'reserved');
  });

  it('an old lease that no longer fits the config is replaced by one that does', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.12.0.0/16', SubnetLen: 25, Backend: { Type: 'vxlan' } });
    await admin.put(`${l.prefix}/subnets/10.12.5.0-24`).value(JSON.stringify({ PublicIP: '192.0.2.70', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:70' } }));
    const m = await store(l).acquireLease({ publicIP: '192.0.2.70', ttlSeconds: 30 });
    assert.match(m.current()!.subnet, /\/25$/);
    assert.equal(m.current()!.reused, false);
    assert.equal(await admin.get(`${l.prefix}/subnets/10.12.5.0-24`).exists(), false);
  });

  it('dual stack: the key carries both subnets (Flannel\'s "v4&v6" form)', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.13.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:13::/56', Backend: { Type: 'vxlan' } });
    const ms = await Promise.all([1, 2, 3].map((i) => store(l).acquireLease({ publicIP: `192.0.2.${80 + i}`, hostName: `d${i}`, ttlSeconds: 30 })));
    const leases = ms.map((m) => m.current()!);
    for (const x of leases) {
      assert.match(x.key, /\/subnets\/10\.13\.\d+\.0-24&fd00:13:0:[0-9a-f]+::-64$/);
      assert.ok(x.ipv6Subnet !== undefined);
    }
    assert.equal(new Set(leases.map((x) => x.ipv6Subnet)).size, 3);
    const snap = await store(l).load();
    assert.deepEqual(snap.hosts.map((h) => [h.name, h.subnet, h.ipv6Subnet]).sort(), leases.map((x) => [x.host.name, x.subnet, x.ipv6Subnet]).sort());
  });

  it('an outage longer than the TTL: the lease is given up, then taken back (same subnet) when etcd returns', async () => {
    const own = await TestEtcd.start('long-outage');
    try {
      const l = makeLayout();
      await own.client().put(`${l.prefix}/config`).value(JSON.stringify({ Network: '10.15.0.0/16', Backend: { Type: 'vxlan' } }));
      const s = new EtcdStore({ endpoints: own.url, backoff: { initialMs: 100, maxMs: 500 } });
      stores.push(s);
      const m = await s.acquireLease({ publicIP: '192.0.2.5', hostName: 'long', ttlSeconds: 1 });
      const before = m.current()!;
      const events: string[] = [];
      m.onEvent((e) => events.push(e.type));

      await own.server.kill();
      // The client stops trusting its lease after 2 × TTL without a keepalive.
      await waitFor('the lease to be given up', () => events.includes('lost'), 10_000);
      assert.equal(m.current(), undefined);
      assert.deepEqual(s.health(), { status: 'degraded', reasons: ['store unreachable', 'subnet lease lost; re-acquiring'] });

      await own.server.restart();
      await waitFor('re-acquisition', () => events.includes('acquired'), 15_000);
      const after = m.current()!;
      assert.equal(after.subnet, before.subnet);
      assert.equal(after.key, before.key);
      await waitFor('ok', () => s.health().status === 'ok', 10_000);
      const kv = await own.client().get(after.key).exec();
      assert.equal(String(kv.kvs[0].lease), after.leaseId, 'the key is bound to the new etcd lease');
    } finally {
      await own.close();
    }
  });

  it('refuses to lease without a valid network config, naming the key', async () => {
    const l = layoutFor();
    await assert.rejects(store(l).acquireLease({ publicIP: '192.0.2.1' }), /no network config at \/t\d+\/coreos\.com\/network\/config/);
    await putConfig(l, { Network: '10.14.0.0/16', SubnetMin: '10.14.0.128', Backend: { Type: 'vxlan' } });
    await assert.rejects(store(l).acquireLease({ publicIP: '192.0.2.1' }), /network\.SubnetMin: 10\.14\.0\.128 is not on a \/24 boundary \(key \/t\d+\/coreos\.com\/network\/config\)/);
  });
});
