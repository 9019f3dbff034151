// `sluice apply -f`, `sluice delete -f`, `sluice get` against a real etcd, through a local commander
// program with captured output (the main CLI registers the same commands): the round trip, what a
// watching store sees of it, and refusals that write nothing.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import type { Etcd3 } from 'etcd3';
import { registerResourceCommands } from '../../src/api/resource-cli.js';
import { makeLayout } from '../../src/store/etcd/keys.js';
import { EtcdStore } from '../../src/store/etcd-store.js';
import type { StoreSnapshot } from '../../src/store/store.js';
import { freePort } from '../../src/store/etcd-server.js';
import { TestEtcd, skipWithoutEtcd, waitFor, writeClusterDoc } from './support/etcd.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

let etcd: TestEtcd;
let admin: Etcd3;
let dir: string;
const PREFIX = ['--prefix', '/cli/coreos.com/network', '--resource-prefix', '/cli/sluice/resources'];
const layout = makeLayout('/cli/coreos.com/network', '/cli/sluice/resources');

async function run(...args: string[]): Promise<Run> {
  let out = '', err = '';
  const program = new Command('sluice')
    .exitOverride()
    .configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; } });
  registerResourceCommands(program);
  const withEtcd = args.includes('--etcd') ? args : [...args, '--etcd', etcd.url, ...PREFIX];
  try {
    await program.parseAsync(['node', 'sluice', ...withEtcd]);
    return { code: 0, out, err };
  } catch (e) {
    assert.ok(e instanceof CommanderError, `unexpected ${String(e)}`);
    return { code: e.exitCode, out, err };
  }
}

const NS = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: web } }
`;
const PODS = `
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: { name: front, namespace: shop, labels: { app: front } }
    spec: { nodeName: h1, containers: [{ name: c, ports: [{ name: http, containerPort: 80 }] }] }
    status: { podIP: 10.20.1.10 }
  - apiVersion: v1
    kind: Pod
    metadata: { name: db, namespace: shop, labels: { app: db } }
    spec: { nodeName: h2 }
    status: { podIP: 10.20.2.10 }
`;
const POLICIES = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: db-from-front, namespace: shop }
spec:
  podSelector: { matchLabels: { app: db } }
  policyTypes: [Ingress]
  ingress: [{ from: [{ podSelector: { matchLabels: { app: front } } }], ports: [{ port: 5432 }] }]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: deny-egress-world }
spec:
  order: 100
  selector: team == 'web'
  types: [Egress]
  egress: [{ action: Deny, destination: { nets: [0.0.0.0/0] } }]
`;

async function resourceKeys(): Promise<string[]> {
  return (await admin.getAll().prefix('/cli/sluice/resources/').keys()).sort();
}

describe('sluice apply / delete / get (real etcd)', { skip: skipWithoutEtcd }, () => {
  before(async () => {
    etcd = await TestEtcd.start('cli');
    admin = etcd.client();
    dir = await mkdtemp(join(tmpdir(), 'sle-cli-'));
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', '1-ns.yaml'), NS);
    await writeFile(join(dir, 'app', '2-pods.yaml'), PODS);
    await writeFile(join(dir, 'app', '3-policies.yaml'), POLICIES);
    await writeFile(join(dir, 'app', 'README.md'), 'not a manifest');
    await writeClusterDoc(admin, {
      network: { Network: '10.20.0.0/16', Backend: { Type: 'vxlan' } },
      hosts: [{ name: 'h1', publicIP: '192.0.2.1', subnet: '10.20.1.0/24' }, { name: 'h2', publicIP: '192.0.2.2', subnet: '10.20.2.0/24' }],
    }, layout);
  });
  after(async () => {
    await etcd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('apply, get, re-apply, change, delete: the round trip, seen live by a watching store', async () => {
    const store = new EtcdStore({ endpoints: etcd.url, prefix: layout.prefix, resourcePrefix: layout.resourcePrefix });
    const seen: StoreSnapshot[] = [];
    try {
      await store.load();
      store.watch((s) => seen.push(s), (e) => assert.fail(e));

      const applied = await run('apply', '-f', join(dir, 'app'));
      assert.equal(applied.code, 0, applied.err);
      assert.equal(applied.out, [
        'Namespace shop created',
        'Pod shop/front created',
        'Pod shop/db created',
        'NetworkPolicy.networking.k8s.io shop/db-from-front created',
        'GlobalNetworkPolicy.projectcalico.org deny-egress-world created',
        '',
      ].join('\n'));
      assert.deepEqual(await resourceKeys(), [
        '/cli/sluice/resources/core/Namespace/shop',
        '/cli/sluice/resources/core/Pod/shop/db',
        '/cli/sluice/resources/core/Pod/shop/front',
        '/cli/sluice/resources/networking.k8s.io/NetworkPolicy/shop/db-from-front',
        '/cli/sluice/resources/projectcalico.org/GlobalNetworkPolicy/deny-egress-world',
      ]);
      // One transaction: the watcher saw one change with everything in it.
      await waitFor('the applied resources', () => seen.length === 1);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(seen.length, 1);
      assert.equal(seen[0].manifests.length, 5);
      assert.deepEqual(seen[0].endpoints.map((e) => `${e.namespace}/${e.name}@${e.host} ${e.ip}`), ['shop/db@h2 10.20.2.10', 'shop/front@h1 10.20.1.10']);

      const pol = await run('get', 'policies');
      assert.equal(pol.code, 0, pol.err);
      assert.match(pol.out, /^KIND +NAMESPACE +NAME +ORDER +SELECTOR +TYPES +RULES \(IN\/OUT\)\n/);
      const lines = pol.out.trimEnd().split('\n').slice(1).map((x) => x.split(/\s{3,}/));
      assert.deepEqual(lines.map((c) => [c[0], c[1], c[2], c[3], c[5], c[6]]).sort(), [
        ['GlobalNetworkPolicy', '-', 'deny-egress-world', '100', 'Egress', '0/1'],
        ['KubernetesNetworkPolicy', 'shop', 'db-from-front', '1000', 'Ingress', '1/0'],
      ]);
      const polJson = JSON.parse((await run('get', 'policies', '--json')).out) as Array<{ name: string; selector: string }>;
      assert.deepEqual(polJson.map((p) => p.name).sort(), ['db-from-front', 'deny-egress-world']);
      assert.equal(polJson.find((p) => p.name === 'deny-egress-world')!.selector, "team == \"web\"");

      const eps = await run('get', 'endpoints');
      assert.equal(eps.code, 0, eps.err);
      assert.equal(eps.out, [
        'NAMESPACE   NAME    HOST   IP           IPV6   LABELS',
        'shop        db      h2     10.20.2.10   -      app=db',
        'shop        front   h1     10.20.1.10   -      app=front',
        '',
      ].join('\n'));
      const hosts = await run('get', 'hosts');
      assert.equal(hosts.out, [
        'NAME   PUBLIC-IP   SUBNET         IPV6-SUBNET   VTEP-MAC            LEASE',
        'h1     192.0.2.1   10.20.1.0/24   -             02:00:0a:14:01:00   reservation',
        'h2     192.0.2.2   10.20.2.0/24   -             02:00:0a:14:02:00   reservation',
        '',
      ].join('\n'));
      // A host with a real lease shows what is left of it.
      const leased = new EtcdStore({ endpoints: etcd.url, prefix: layout.prefix, resourcePrefix: layout.resourcePrefix });
      try {
        await leased.acquireLease({ publicIP: '192.0.2.3', hostName: 'h3', ttlSeconds: 3600 });
        const h = JSON.parse((await run('get', 'hosts', '--json')).out) as Array<{ name: string; lease: { ttlSeconds: number } | null }>;
        const h3 = h.find((x) => x.name === 'h3')!;
        assert.ok(h3.lease !== null && h3.lease.ttlSeconds > 3500 && h3.lease.ttlSeconds <= 3600, JSON.stringify(h3));
        assert.match((await run('get', 'hosts')).out, /\nh3 .* expires in (59m\d\ds|1h00m)\n/);
      } finally {
        await leased.close();
      }

      // Re-applying changes nothing; a changed policy is "configured".
      const again = await run('apply', '-f', join(dir, 'app'));
      assert.equal(again.out.split('\n').filter((x) => x.endsWith(' unchanged')).length, 5);
      const rev = (await admin.get('/none').exec()).header.revision;
      await writeFile(join(dir, 'changed.yaml'), POLICIES.replace('port: 5432', 'port: 5433'));
      const changed = await run('apply', '-f', join(dir, 'changed.yaml'));
      assert.equal(changed.out, 'NetworkPolicy.networking.k8s.io shop/db-from-front configured\nGlobalNetworkPolicy.projectcalico.org deny-egress-world unchanged\n');
      assert.equal(BigInt((await admin.get('/none').exec()).header.revision), BigInt(rev) + 1n, 'one write');
      await waitFor('the changed policy', () => JSON.stringify(seen.at(-1)!.manifests).includes('5433'));

      // Delete: everything named in the files, in one transaction.
      const n = seen.length;
      const del = await run('delete', '-f', join(dir, 'app', '3-policies.yaml'), join(dir, 'app', '2-pods.yaml'));
      assert.equal(del.code, 0, del.err);
      assert.equal(del.out, [
        'NetworkPolicy.networking.k8s.io shop/db-from-front deleted',
        'GlobalNetworkPolicy.projectcalico.org deny-egress-world deleted',
        'Pod shop/front deleted',
        'Pod shop/db deleted',
        '',
      ].join('\n'));
      await waitFor('the deletion', () => seen.length === n + 1);
      assert.deepEqual(seen.at(-1)!.manifests.map((m) => (m as { kind: string }).kind), ['Namespace']);
      assert.equal((await run('get', 'policies')).out, 'no policies\n');

      const missing = await run('delete', '-f', join(dir, 'app', '3-policies.yaml'));
      assert.equal(missing.code, 1);
      assert.match(missing.out, /deny-egress-world not found/);
      assert.match(missing.err, /2 of 2 resource\(s\) not found/);
      assert.equal((await run('delete', '-f', join(dir, 'app', '3-policies.yaml'), '--ignore-not-found')).code, 0);
    } finally {
      await store.close();
    }
  });

  it('an invalid manifest is refused by file, document and field, and nothing is written', async () => {
    const before = await resourceKeys();
    const rev = (await admin.get('/none').exec()).header.revision;
    await writeFile(join(dir, 'good.yaml'), NS.replace('shop', 'other'));
    await writeFile(join(dir, 'bad.yaml'), `${POLICIES}---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: { name: broken, namespace: other }\nspec:\n  selector: app == 'x' &&\n  ingress: [{ action: Allow }]\n`);
    const r = await run('apply', '-f', join(dir, 'good.yaml'), join(dir, 'bad.yaml'));
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.match(r.err, /invalid manifests \(nothing was written\)/);
    assert.match(r.err, new RegExp(`${join(dir, 'bad.yaml').replace(/[.]/g, '\\.')} doc 3: spec\\.selector: `));
    assert.deepEqual(await resourceKeys(), before);
    assert.equal((await admin.get('/none').exec()).header.revision, rev);

    // Valid on its own, invalid with what is in etcd: a pod address already taken.
    await run('apply', '-f', join(dir, 'app', '2-pods.yaml'));
    const rev2 = (await admin.get('/none').exec()).header.revision;
    await writeFile(join(dir, 'clash.yaml'), `apiVersion: v1\nkind: Pod\nmetadata: { name: thief, namespace: shop }\nspec: { nodeName: h1 }\nstatus: { podIP: 10.20.1.10 }\n`);
    const clash = await run('apply', '-f', join(dir, 'clash.yaml'));
    assert.equal(clash.code, 2);
    assert.match(clash.err, /pod IP 10\.20\.1\.10 is already used by pod shop\/front .*\(key \/cli\/sluice\/resources\/core\/Pod\/shop\/thief\)/);
    // Outside the pod's host subnet.
    await writeFile(join(dir, 'astray.yaml'), `apiVersion: v1\nkind: Pod\nmetadata: { name: astray, namespace: shop }\nspec: { nodeName: h1 }\nstatus: { podIP: 10.20.2.99 }\n`);
    const astray = await run('apply', '-f', join(dir, 'astray.yaml'));
    assert.equal(astray.code, 2);
    assert.match(astray.err, /status\.podIP: 10\.20\.2\.99 is not inside h1's subnet 10\.20\.1\.0\/24 \(key \/cli\/sluice\/resources\/core\/Pod\/shop\/astray\)/);
    assert.equal((await admin.get('/none').exec()).header.revision, rev2);

    // Usage errors.
    assert.equal((await run('get', 'things')).code, 2);
    assert.equal((await run('apply')).code, 2);
    const nofile = await run('apply', '-f', join(dir, 'nope.yaml'));
    assert.equal(nofile.code, 2);
    assert.match(nofile.err, /nope\.yaml: cannot read \(ENOENT\)/);
  });

  it('says so when etcd cannot be reached', async () => {
    const port = await freePort();
    const r = await run('get', 'hosts', '--etcd', `http://127.0.0.1:${port}`);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`error: etcd http://127\\.0\\.0\\.1:${port}: cannot reach etcd: .*(UNAVAILABLE|ECONNREFUSED)`));
    const a = await run('apply', '-f', join(dir, 'app'), '--etcd', `http://127.0.0.1:${port}`);
    assert.equal(a.code, 1);
    assert.match(a.err, /cannot reach etcd/);
    const bad = await run('get', 'hosts', '--etcd', 'localhost:2379');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /etcd endpoint "localhost:2379" is not a URL like http:\/\/127\.0\.0\.1:2379/);
  });
});
