// Subnet leases against a real etcd: Flannel's acquisition (atomic create, races retried, reuse by
// PublicIP), expiry and re-acquisition, and what a watching store sees of it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { type AcquireOptions, type SubnetLease, acquireSubnet } from '../../src/store/etcd/acquire.js';
import { type EtcdLayout, makeLayout, parseSubnetKey, subnetKey } from '../../src/store/etcd/keys.js';
import { freeSubnets, toBig } from '../../src/store/etcd/subnet-math.js';
import { parseCidr } from '../../src/store/cidr.js';
import { EtcdStore, StoreError } from '../../src/store/etcd-store.js';
import type { LeaseEvent } from '../../src/store/leases.js';
import type { StoreSnapshot } from '../../src/store/store.js';
import { TestEtcd, skipWithoutEtcd, waitFor } from './support/etcd.js';
import { createClient } from '../../src/store/etcd/client.js';
import { EtcdServer, freePort } from '../../src/store/etcd-server.js';

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

/** One acquisition, without a manager: nobody keeps the etcd lease alive, it just expires later. */
function acquire(c: Etcd3, l: EtcdLayout, o: AcquireOptions): Promise<SubnetLease> {
  return acquireSubnet(c, l, o, 'test');
}

const stores: EtcdStore[] = [];
function store(l: EtcdLayout, o: { backoff?: { initialMs?: number; maxMs?: number } } = {}): EtcdStore {
  const s = new EtcdStore({ endpoints: etcd.url, prefix: l.prefix, resourcePrefix: l.resourcePrefix, ...o });
  stores.push(s);
  return s;
}

// The allocation arithmetic and key format on their own (no etcd needed).
describe('subnet allocation helpers', () => {
  const c = (t: string) => {
    const x = parseCidr(t, t.includes(':') ? 6 : 4);
    assert.ok(typeof x !== 'string', x as string);
    return x;
  };
  const free = (min: string, max: string, len: number, used: string[], limit = 100) =>
    freeSubnets(4, toBig(c(`${min}/${len}`).bytes), toBig(c(`${max}/${len}`).bytes), len, used.map(c), limit).map((x) => x.text);

  it('skips used subnets, including larger blocks that cover several, and stops at the limit', () => {
    assert.deepEqual(free('10.0.1.0', '10.0.6.0', 24, []), ['10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24', '10.0.4.0/24', '10.0.5.0/24', '10.0.6.0/24']);
    assert.deepEqual(free('10.0.1.0', '10.0.6.0', 24, ['10.0.2.0/24', '10.0.5.0/24']), ['10.0.1.0/24', '10.0.3.0/24', '10.0.4.0/24', '10.0.6.0/24']);
    assert.deepEqual(free('10.0.1.0', '10.0.9.0', 24, ['10.0.2.0/23', '10.0.6.128/25', '10.0.0.0/24']), ['10.0.1.0/24', '10.0.4.0/24', '10.0.5.0/24', '10.0.7.0/24', '10.0.8.0/24', '10.0.9.0/24']);
    assert.deepEqual(free('10.0.1.0', '10.0.9.0', 24, ['10.0.0.0/16']), []);
    assert.deepEqual(free('10.0.1.0', '10.0.250.0', 24, [], 3), ['10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24']);
    const v6 = freeSubnets(6, toBig(c('fd00::/64').bytes), toBig(c('fd00:0:0:3::/64').bytes), 64, [c('fd00:0:0:1::/64')], 10).map((x) => x.text);
    assert.deepEqual(v6, ['fd00::/64', 'fd00:0:0:2::/64', 'fd00:0:0:3::/64']);
  });

  it("parses Flannel's subnet keys and names a bad one", () => {
    const k = parseSubnetKey('10.5.52.0-24&fc00::-64');
    assert.ok(typeof k !== 'string');
    assert.deepEqual([k.subnet.text, k.ipv6Subnet?.text], ['10.5.52.0/24', 'fc00::/64']);
    assert.equal(subnetKey(makeLayout(), '10.5.52.0/24', 'fc00::/64'), '/coreos.com/network/subnets/10.5.52.0-24&fc00::-64');
    assert.match(parseSubnetKey('10.5.52.0') as string, /is not a subnet key/);
    assert.match(parseSubnetKey('10.5.52.1-24') as string, /has host bits set/);
    assert.match(parseSubnetKey('a&b&c') as string, /is not a subnet key/);
  });

  it('refuses prefixes that are not absolute or that nest', () => {
    assert.throws(() => makeLayout('coreos.com/network'), /prefix: "coreos\.com\/network" is not an etcd key prefix/);
    assert.throws(() => makeLayout('/a', '/a/b'), /must not contain each other/);
    assert.deepEqual(makeLayout('/x/', '/y//'.replace('//', '/')), { prefix: '/x', resourcePrefix: '/y' });
  });
});

describe('subnet leases (real etcd)', { skip: skipWithoutEtcd }, () => {
  before(async () => {
    etcd = await TestEtcd.start('leases');
    admin = etcd.client();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await etcd?.close();
  });

  it('8 hosts starting at once get 8 distinct subnets (random picks, Flannel style)', async () => {
    const l = layoutFor();
    await putConfig(l, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const clients = Array.from({ length: 8 }, () => etcd.client());
    const got = await Promise.all(clients.map((c, i) => acquire(c, l, { publicIP: `192.0.2.${i + 1}`, hostName: `h${i + 1}`, ttlSeconds: 30 })));
    const subnets = got.map((g) => g.subnet);
    assert.equal(new Set(subnets).size, 8, `duplicates in ${subnets.join(' ')}`);
    for (const s of subnets) assert.match(s, /^10\.5\.\d+\.0\/24$/);
    assert.ok(!subnets.includes('10.5.0.0/24'), 'the first subnet is skipped (SubnetMin default)');
    const keys = (await admin.getAll().prefix(`${l.prefix}/subnets/`).keys()).sort();
    assert.deepEqual(keys, got.map((g) => g.key).sort());
    const snap = await store(l).load();
    assert.deepEqual(snap.hosts.map((h) => h.name).sort(), ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']);
  });

  it('races for the same subnet are retried: 8 hosts all trying the first free one still end up distinct', async () => {
    const l = layoutFor();
    // Exactly 8 subnets to lease (10.5.0.16/28 .. 10.5.0.128/28), and everyone picks the first free one.
    await putConfig(l, { Network: '10.5.0.0/24', SubnetLen: 28, SubnetMin: '10.5.0.16', SubnetMax: '10.5.0.128', Backend: { Type: 'vxlan' } });
    const clients = Array.from({ length: 8 }, () => etcd.client());
    const got = await Promise.all(clients.map((c, i) => acquire(c, l, { publicIP: `192.0.2.${i + 1}`, ttlSeconds: 30, choose: () => 0 })));
    const subnets = got.map((g) => g.subnet).sort();
    assert.deepEqual(subnets, ['10.5.0.112/28', '10.5.0.128/28', '10.5.0.16/28', '10.5.0.32/28', '10.5.0.48/28', '10.5.0.64/28', '10.5.0.80/28', '10.5.0.96/28']);
    const attempts = got.map((g) => g.attempts);
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

  it('the lease expires during an outage and another host takes the subnet: re-acquired elsewhere, reported as changed', async () => {
    const own = await TestEtcd.start('long-outage');
    try {
      const l = makeLayout();
      await own.client().put(`${l.prefix}/config`).value(JSON.stringify({ Network: '10.15.0.0/16', Backend: { Type: 'vxlan' } }));
      const s = new EtcdStore({ endpoints: own.url, backoff: { initialMs: 100, maxMs: 500 } });
      stores.push(s);
      const m = await s.acquireLease({ publicIP: '192.0.2.5', hostName: 'long', ttlSeconds: 2 });
      const before = m.current()!;
      const events: LeaseEvent[] = [];
      m.onEvent((e) => events.push(e));

      await own.server.kill();
      await waitFor('degraded', () => s.health().status === 'degraded', 5000);
      assert.deepEqual(s.health().reasons, ['store unreachable']);

      // etcd runs where this host cannot reach it (same data, another port) for longer than the
      // TTL: the lease expires there, and another host takes the subnet.
      const aside = await EtcdServer.start({ ...own.server.options, clientPort: await freePort() });
      try {
        const c2 = createClient({ endpoints: aside.url });
        try {
          await waitFor('the lease to expire in etcd', async () => !(await c2.get(before.key).exists()), 10_000);
          const thief = await acquireSubnet(c2, l, { publicIP: '192.0.2.6', hostName: 'thief', previousSubnet: before.subnet, ttlSeconds: 60 }, 'test');
          assert.equal(thief.subnet, before.subnet);
        } finally {
          c2.close();
        }
      } finally {
        await aside.stop();
      }
      assert.equal(m.current()?.subnet, before.subnet, 'the client does not give up on its own; etcd decides');

      await own.server.restart();
      await waitFor('re-acquisition', () => events.some((e) => e.type === 'acquired'), 15_000);
      const after = m.current()!;
      assert.notEqual(after.subnet, before.subnet);
      const acquired = events.find((e) => e.type === 'acquired');
      assert.deepEqual(acquired, { type: 'acquired', lease: after, changed: true });
      assert.ok(events.some((e) => e.type === 'lost'));
      await waitFor('ok', () => s.health().status === 'ok', 10_000);
      const snap = await s.load();
      assert.deepEqual(snap.hosts.map((h) => [h.name, h.subnet]).sort(), [['long', after.subnet], ['thief', before.subnet]].sort());
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
