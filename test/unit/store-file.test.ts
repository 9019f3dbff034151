// File store: the cluster file format, its validation messages, atomic writes and the watch.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { FileStore, StoreError, parseClusterText, writeClusterFile } from '../../src/store/file-store.js';
import type { StoreSnapshot } from '../../src/store/store.js';

const VALID = `
network:
  Network: 10.244.0.0/16
  SubnetLen: 24
  IPv6Network: fd00:10:244::/56
  IPv6SubnetLen: 64
  Backend: { Type: vxlan, Port: 8472, VNI: 1 }
  MTU: 1500
hosts:
  - { name: h1, publicIP: 10.99.0.1, subnet: 10.244.1.0/24, ipv6Subnet: "fd00:10:244:1::/64", vtepMAC: "02:00:0A:F4:01:00", port: 8472 }
  - { name: h2, publicIP: 10.99.0.2, subnet: 10.244.2.0/24, ipv6Subnet: "fd00:10:244:2:0::/64" }
manifests:
  - { apiVersion: v1, kind: Namespace, metadata: { name: x, labels: { team: a } } }
  - apiVersion: v1
    kind: Pod
    metadata: { name: a, namespace: x, labels: { pod: a }, annotations: { sluice.io/netns: sl-x-a } }
    spec: { nodeName: h1 }
    status: { podIP: 10.244.1.2, podIPs: [{ ip: 10.244.1.2 }, { ip: "fd00:10:244:1::2" }] }
  - apiVersion: v1
    kind: Pod
    metadata: { name: b, annotations: { sluice.io/interface: net1 } }
    spec: { nodeName: h2 }
    status: { podIP: 10.244.2.7 }
  - { apiVersion: v1, kind: Pod, metadata: { name: pending, namespace: x }, spec: { nodeName: h2 } }
  - { apiVersion: v1, kind: Pod, metadata: { name: unscheduled, namespace: x } }
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: deny, namespace: x }
    spec: { podSelector: {}, policyTypes: [Ingress] }
`;

describe('cluster file: valid input', () => {
  it('loads to the expected snapshot, with defaults and canonical addresses', () => {
    const s = parseClusterText(VALID, 'cluster.yaml');
    assert.deepEqual(s.config, {
      network: '10.244.0.0/16', subnetLen: 24, ipv6Network: 'fd00:10:244::/56', ipv6SubnetLen: 64,
      backend: { type: 'vxlan', port: 8472, vni: 1 }, mtu: 1500,
    });
    assert.deepEqual(s.hosts, [
      { name: 'h1', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64', vtepMAC: '02:00:0a:f4:01:00', port: 8472 },
      // vtepMAC derived from the subnet when absent; IPv6 written canonically.
      { name: 'h2', publicIP: '10.99.0.2', subnet: '10.244.2.0/24', ipv6Subnet: 'fd00:10:244:2::/64', vtepMAC: '02:00:0a:f4:02:00' },
    ]);
    assert.deepEqual(s.endpoints, [
      { namespace: 'x', name: 'a', host: 'h1', ip: '10.244.1.2', ipv6: 'fd00:10:244:1::2', netns: 'sl-x-a', ifname: 'eth0', labels: { pod: 'a' } },
      { namespace: 'default', name: 'b', host: 'h2', ip: '10.244.2.7', ifname: 'net1', labels: {} },
    ]);
    // Manifests are passed through untouched, pending and unscheduled pods included.
    assert.deepEqual(s.manifests, (parse(VALID) as { manifests: unknown[] }).manifests);
  });

  it('applies Flannel and backend defaults', () => {
    const s = parseClusterText('network: { Network: 10.1.0.0/24 }\n', 'c.yaml');
    assert.deepEqual(s.config, { network: '10.1.0.0/24', subnetLen: 26, backend: { type: 'vxlan', port: 8472, vni: 1 } });
    assert.deepEqual(s.hosts, []);
    const u = parseClusterText('network: { Network: 10.0.0.0/8, Backend: { Type: udp } }\n', 'c.yaml');
    assert.deepEqual(u.config, { network: '10.0.0.0/8', subnetLen: 24, backend: { type: 'udp', port: 8285, vni: 1 } });
    const v6 = parseClusterText('network: { Network: 10.0.0.0/8, IPv6Network: "fd00::/48" }\n', 'c.yaml');
    assert.equal(v6.config.ipv6SubnetLen, 64);
  });
});

/** Edits the valid document and returns the error message it produces. */
function errorOf(edit: (doc: any) => void): string {
  const doc = parse(VALID);
  edit(doc);
  try {
    parseClusterText(stringify(doc), 'cluster.yaml');
  } catch (e) {
    assert.ok(e instanceof StoreError, `expected StoreError, got ${String(e)}`);
    assert.equal(e.code, 'STORE_INVALID');
    return e.message;
  }
  assert.fail('expected the document to be rejected');
}

describe('cluster file: invalid fields are named', () => {
  const cases: Array<[string, (d: any) => void, string | RegExp]> = [
    ['subnet outside the network', (d) => { d.hosts[1].subnet = '10.245.1.0/24'; },
      'cluster.yaml: hosts[1].subnet: 10.245.1.0/24 is not inside network 10.244.0.0/16'],
    ['subnet of the wrong size', (d) => { d.hosts[1].subnet = '10.244.2.0/25'; },
      'cluster.yaml: hosts[1].subnet: 10.244.2.0/25 is a /25 but network.SubnetLen is 24'],
    ['subnet with host bits', (d) => { d.hosts[0].subnet = '10.244.1.1/24'; },
      'cluster.yaml: hosts[0].subnet: 10.244.1.1/24 has host bits set (the network is 10.244.1.0/24)'],
    ['subnet not a CIDR', (d) => { d.hosts[0].subnet = '10.244.1.0'; }, /^cluster\.yaml: hosts\[0\]\.subnet: "10\.244\.1\.0" is not an IPv4 CIDR/],
    ['duplicate subnet', (d) => { d.hosts[1].subnet = '10.244.1.0/24'; d.hosts[1].ipv6Subnet = 'fd00:10:244:9::/64'; d.manifests.splice(1, 2); },
      'cluster.yaml: hosts[1].subnet: subnet 10.244.1.0/24 is already used by hosts[0]'],
    ['duplicate name', (d) => { d.hosts[1].name = 'h1'; }, 'cluster.yaml: hosts[1].name: host name h1 is already used by hosts[0]'],
    ['duplicate publicIP', (d) => { d.hosts[1].publicIP = '10.99.0.1'; }, 'cluster.yaml: hosts[1].publicIP: publicIP 10.99.0.1 is already used by hosts[0]'],
    ['publicIP not IPv4', (d) => { d.hosts[0].publicIP = '10.99.1'; }, 'cluster.yaml: hosts[0].publicIP: "10.99.1" is not an IPv4 address'],
    ['publicIP inside the overlay', (d) => { d.hosts[0].publicIP = '10.244.9.9'; }, /^cluster\.yaml: hosts\[0\]\.publicIP: 10\.244\.9\.9 is inside the overlay network/],
    ['bad MAC', (d) => { d.hosts[0].vtepMAC = '02:00:0a:f4:01'; }, /^cluster\.yaml: hosts\[0\]\.vtepMAC: "02:00:0a:f4:01" is not a MAC address/],
    ['multicast MAC', (d) => { d.hosts[0].vtepMAC = '01:00:5e:00:00:01'; }, /^cluster\.yaml: hosts\[0\]\.vtepMAC: 01:00:5e:00:00:01 is a multicast MAC/],
    ['duplicate MAC', (d) => { d.hosts[1].vtepMAC = '02:00:0a:f4:01:00'; }, 'cluster.yaml: hosts[1].vtepMAC: vtepMAC 02:00:0a:f4:01:00 is already used by hosts[0]'],
    ['bad host name', (d) => { d.hosts[0].name = 'h 1'; }, /^cluster\.yaml: hosts\[0\]\.name: "h 1" is not a valid host name/],
    ['missing host field', (d) => { delete d.hosts[1].publicIP; }, /^cluster\.yaml: hosts\[1\]\.publicIP: is missing/],
    ['unknown host field', (d) => { d.hosts[0].publicIp = '1.2.3.4'; }, 'cluster.yaml: hosts[0].publicIp: unknown field; did you mean publicIP?'],
    ['port out of range', (d) => { d.hosts[0].port = 70000; }, /^cluster\.yaml: hosts\[0\]\.port: 70000 is out of range/],
    ['Network not a CIDR', (d) => { d.network.Network = '10.244.0.0/33'; }, /^cluster\.yaml: network\.Network: "10\.244\.0\.0\/33" is not an IPv4 CIDR/],
    ['network too small', (d) => { d.network = { Network: '10.0.0.0/29' }; d.hosts = []; d.manifests = []; },
      'cluster.yaml: network.Network: 10.0.0.0/29 is too small; the smallest useful network is a /28'],
    ['SubnetLen too long', (d) => { d.network.SubnetLen = 31; }, 'cluster.yaml: network.SubnetLen: 31 is too long; SubnetLen must be at most 30'],
    ['SubnetLen too short', (d) => { d.network.SubnetLen = 17; },
      'cluster.yaml: network.SubnetLen: 17 leaves fewer than four subnets in 10.244.0.0/16; SubnetLen must be at least 18'],
    ['SubnetLen not a number', (d) => { d.network.SubnetLen = '24'; }, /^cluster\.yaml: network\.SubnetLen: expected a prefix length/],
    ['unknown backend', (d) => { d.network.Backend.Type = 'wireguard'; },
      'cluster.yaml: network.Backend.Type: unknown backend type "wireguard"; expected one of: vxlan, udp'],
    ['VNI out of range', (d) => { d.network.Backend.VNI = 1 << 24; }, /^cluster\.yaml: network\.Backend\.VNI: 16777216 is out of range/],
    ['misspelt network field', (d) => { d.network.Subnetlen = 24; }, 'cluster.yaml: network.Subnetlen: unknown field; did you mean SubnetLen?'],
    ['IPv6SubnetLen too long', (d) => { d.network.IPv6SubnetLen = 127; }, /^cluster\.yaml: network\.IPv6SubnetLen: 127 is too long/],
    ['MTU too small for IPv6', (d) => { d.network.MTU = 1300; }, /^cluster\.yaml: network\.MTU: 1300 leaves 1250 bytes after vxlan encapsulation/],
    ['ipv6Subnet without IPv6Network', (d) => { delete d.network.IPv6Network; delete d.network.IPv6SubnetLen; },
      'cluster.yaml: hosts[0].ipv6Subnet: is set but network.IPv6Network is not'],
    ['ipv6Subnet outside', (d) => { d.hosts[1].ipv6Subnet = 'fd00:11::/64'; }, 'cluster.yaml: hosts[1].ipv6Subnet: fd00:11::/64 is not inside network fd00:10:244::/56'],
    ['manifest without kind', (d) => { delete d.manifests[0].kind; }, /^cluster\.yaml: manifests\[0\]\.kind: is missing/],
    ['manifest without name', (d) => { delete d.manifests[5].metadata.name; }, /^cluster\.yaml: manifests\[5\]\.metadata\.name: is missing/],
    ['label value not a string', (d) => { d.manifests[1].metadata.labels.pod = 3; }, /^cluster\.yaml: manifests\[1\]\.metadata\.labels\.pod: label and annotation values must be strings/],
    ['duplicate manifest', (d) => { d.manifests.push(d.manifests[5]); }, 'cluster.yaml: manifests[6].metadata.name: duplicate NetworkPolicy x/deny (also manifests[5])'],
    ['pod IP outside its node subnet', (d) => { d.manifests[1].status = { podIP: '10.244.2.9' }; },
      "cluster.yaml: manifests[1].status.podIP: 10.244.2.9 is not inside h1's subnet 10.244.1.0/24"],
    ['pod IP is the network address', (d) => { d.manifests[1].status = { podIP: '10.244.1.0' }; },
      'cluster.yaml: manifests[1].status.podIP: 10.244.1.0 is the network or broadcast address of 10.244.1.0/24'],
    ['pod IPv6 outside its node subnet', (d) => { d.manifests[1].status.podIPs[1].ip = 'fd00:10:244:2::2'; },
      "cluster.yaml: manifests[1].status.podIPs[1].ip: fd00:10:244:2::2 is not inside h1's ipv6Subnet fd00:10:244:1::/64"],
    ['pod IP not an address', (d) => { d.manifests[1].status.podIP = 'ten'; }, 'cluster.yaml: manifests[1].status.podIP: "ten" is not an IP address'],
    ['pod on an unknown host', (d) => { d.manifests[1].spec.nodeName = 'h9'; }, 'cluster.yaml: manifests[1].spec.nodeName: "h9" is not one of the hosts (h1, h2)'],
    ['pod without IPv4', (d) => { d.manifests[1].status = { podIP: 'fd00:10:244:1::2' }; }, /^cluster\.yaml: manifests\[1\]\.status\.podIP: pod x\/a has no IPv4 address/],
    ['two pods with one IP', (d) => { d.manifests[2].spec.nodeName = 'h1'; d.manifests[2].status.podIP = '10.244.1.2'; },
      'cluster.yaml: manifests[2].status.podIP: 10.244.1.2 is already the address of pod x/a'],
    ['bad netns annotation', (d) => { d.manifests[1].metadata.annotations['sluice.io/netns'] = '../etc'; },
      'cluster.yaml: manifests[1].metadata.annotations["sluice.io/netns"]: "../etc" is not a network namespace name'],
    ['interface name too long', (d) => { d.manifests[2].metadata.annotations['sluice.io/interface'] = 'a-very-long-ifname'; },
      /^cluster\.yaml: manifests\[2\]\.metadata\.annotations\["sluice\.io\/interface"\]: "a-very-long-ifname" is not an interface name/],
    ['unknown top-level section', (d) => { d.endpoints = []; }, /^cluster\.yaml: endpoints: unknown field \(known fields: network, hosts, manifests\)/],
    ['hosts not a list', (d) => { d.hosts = { h1: {} }; }, /^cluster\.yaml: hosts: expected a list of hosts/],
  ];
  for (const [name, edit, expected] of cases) {
    it(name, () => {
      const msg = errorOf(edit);
      if (typeof expected === 'string') assert.equal(msg.split('\n')[0], expected);
      else assert.match(msg, expected);
    });
  }

  it('reports every problem, one line each', () => {
    const msg = errorOf((d) => { d.hosts[0].vtepMAC = 'x'; d.hosts[1].publicIP = 'y'; });
    assert.deepEqual(msg.split('\n').map((l) => l.split(': ')[1]), ['hosts[0].vtepMAC', 'hosts[1].publicIP']);
  });

  it('rejects YAML syntax errors with a line number, and an empty file', () => {
    assert.throws(() => parseClusterText('network:\n  Network: [10.0.0.0/8\n', 'c.yaml'),
      (e: unknown) => e instanceof StoreError && e.code === 'STORE_PARSE' && /^c\.yaml: line \d+, column \d+: /.test(e.message));
    assert.throws(() => parseClusterText('network: {Network: 10.0.0.0/8}\nnetwork: {}\n', 'c.yaml'), { message: /^c\.yaml: line 2, column 1: Map keys must be unique/ });
    assert.throws(() => parseClusterText('', 'c.yaml'), { message: /^c\.yaml: the file is empty/ });
    assert.throws(() => parseClusterText('network: *nope\n', 'c.yaml'),
      (e: unknown) => e instanceof StoreError && e.code === 'STORE_PARSE' && /^c\.yaml: Unresolved alias/.test(e.message));
  });
});

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('FileStore', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sllt-store-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('load() names the file when it is missing or invalid', async () => {
    const path = join(dir, 'missing.yaml');
    await assert.rejects(new FileStore(path).load(), (e: unknown) => e instanceof StoreError && e.code === 'STORE_READ' && e.message === `${path}: cannot read: file not found`);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, VALID.replace('10.244.2.0/24', '10.245.2.0/24'));
    await assert.rejects(new FileStore(bad).load(), { message: `${bad}: hosts[1].subnet: 10.245.2.0/24 is not inside network 10.244.0.0/16` });
  });

  it('writeClusterFile writes atomically what load() reads back, and refuses invalid content', async () => {
    const path = join(dir, 'written', 'cluster.yaml');
    const original = parseClusterText(VALID, 'x');
    const written = await writeClusterFile(path, original);
    assert.deepEqual(written, original);
    assert.deepEqual(await new FileStore(path).load(), original);
    assert.deepEqual(await readdir(join(dir, 'written')), ['cluster.yaml']); // no temporary file left
    const before = await readFile(path, 'utf8');
    await assert.rejects(writeClusterFile(path, { ...original, hosts: [{ ...original.hosts[0], subnet: '10.9.0.0/24' }] }), StoreError);
    assert.equal(await readFile(path, 'utf8'), before);
  });

  it('watch() reports valid changes, rejects invalid ones keeping the old state, ignores other files', async () => {
    const sub = await mkdtemp(join(dir, 'w-'));
    const path = join(sub, 'cluster.yaml');
    await writeFile(path, VALID);
    const store = new FileStore(path, { debounceMs: 30 });
    const first = await store.load();
    const changes: StoreSnapshot[] = [];
    const errors: Error[] = [];
    const second: StoreSnapshot[] = [];
    const stop = store.watch((s) => changes.push(s), (e) => errors.push(e));
    store.watch((s) => second.push(s), () => {});
    try {
      // Nothing changed since load(): the initial check reports nothing.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(changes.length, 0);
      assert.equal(errors.length, 0);

      // An editor-style replacement: write elsewhere, rename over.
      const v2 = VALID.replace('MTU: 1500', 'MTU: 9000');
      await writeFile(join(sub, '.tmp'), v2);
      await rename(join(sub, '.tmp'), path);
      await waitFor('first change', () => changes.length === 1);
      assert.equal(changes[0].config.mtu, 9000);
      assert.deepEqual(changes[0].hosts, first.hosts);
      await waitFor('second watcher', () => second.length === 1);

      // An invalid version: one error naming the field, no change.
      await writeFile(path, v2.replace('10.244.2.0/24', '10.245.2.0/24'));
      await waitFor('error', () => errors.length === 1);
      assert.ok(errors[0] instanceof StoreError);
      assert.match(errors[0].message, /cluster\.yaml: hosts\[1\]\.subnet: 10\.245\.2\.0\/24 is not inside network/);
      // Writing unrelated files in the directory triggers nothing.
      await writeFile(join(sub, 'h1.log'), 'log line\n');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(changes.length, 1);
      assert.equal(errors.length, 1);

      // Fixed again (in place this time): a change with the new contents.
      await writeFile(path, v2.replace('10.244.2.7', '10.244.2.8'));
      await waitFor('second change', () => changes.length === 2);
      assert.equal(changes[1].endpoints.find((e) => e.name === 'b')?.ip, '10.244.2.8');
      assert.equal(errors.length, 1);

      // After stop(), nothing more is reported to that watcher.
      stop();
      await writeFile(path, VALID);
      await waitFor('other watcher', () => second.length === 3);
      assert.equal(changes.length, 2);
    } finally {
      await store.close();
    }
  });

  it('watch() without load() reports the current contents first', async () => {
    const sub = await mkdtemp(join(dir, 'w-'));
    const path = join(sub, 'cluster.yaml');
    await writeFile(path, VALID);
    const store = new FileStore(path, { debounceMs: 10 });
    const got: StoreSnapshot[] = [];
    store.watch((s) => got.push(s), (e) => assert.fail(e));
    try {
      await waitFor('initial snapshot', () => got.length === 1);
      assert.equal(got[0].hosts.length, 2);
    } finally {
      await store.close();
    }
  });
});
