// Lab planning and manifest loading: pure, no root needed.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseClusterText, toClusterDocument } from '../../src/store/cluster-file.js';
import { stringify } from 'yaml';
import { LabError } from '../../src/lab/errors.js';
import { loadManifestPaths, parseManifestText } from '../../src/lab/manifests.js';
import { checkLabName, podNetns } from '../../src/lab/names.js';
import { planLab } from '../../src/lab/plan.js';
import { readdress } from '../../src/lab/leased.js';

const reparse = (plan: ReturnType<typeof planLab>) => parseClusterText(stringify(toClusterDocument(plan.cluster)), 'cluster.yaml');

describe('lab plan', () => {
  it('demo: two pods per host, addresses from .2, deterministic MACs, a valid cluster file', () => {
    const plan = planLab({ name: 'lab', hosts: 3, backend: 'udp', ipv6: false });
    assert.deepEqual(plan.hosts.map((h) => [h.name, h.netns, h.underlayIP, h.subnet, h.vtepMAC]), [
      ['h1', 'lab-h1', '10.99.0.1', '10.244.1.0/24', '02:00:0a:f4:01:00'],
      ['h2', 'lab-h2', '10.99.0.2', '10.244.2.0/24', '02:00:0a:f4:02:00'],
      ['h3', 'lab-h3', '10.99.0.3', '10.244.3.0/24', '02:00:0a:f4:03:00'],
    ]);
    assert.equal(plan.underlayNetns, 'lab-ul');
    assert.deepEqual(plan.pods.map((p) => `${p.namespace}/${p.name}@${p.host}=${p.ip} ${p.netns}`), [
      'demo/h1-a@h1=10.244.1.2 lab-demo-h1-a', 'demo/h1-b@h1=10.244.1.3 lab-demo-h1-b',
      'demo/h2-a@h2=10.244.2.2 lab-demo-h2-a', 'demo/h2-b@h2=10.244.2.3 lab-demo-h2-b',
      'demo/h3-a@h3=10.244.3.2 lab-demo-h3-a', 'demo/h3-b@h3=10.244.3.3 lab-demo-h3-b',
    ]);
    const snap = reparse(plan);
    assert.deepEqual(snap.config.backend, { type: 'udp', port: 8285, vni: 1 });
    assert.deepEqual(snap.endpoints.map((e) => [e.namespace, e.name, e.host, e.ip, e.netns, e.ifname, e.labels]),
      plan.pods.map((p) => [p.namespace, p.name, p.host, p.ip, p.netns, 'eth0', { app: 'demo' }]));
    const ns = snap.manifests.find((m) => (m as { kind: string }).kind === 'Namespace') as { metadata: { labels: Record<string, string> } };
    assert.deepEqual(ns.metadata.labels, { 'kubernetes.io/metadata.name': 'demo' });
  });

  it('--ipv6: per-host /64 in hex, pod addresses matching the IPv4 host part', () => {
    const plan = planLab({ name: 'lab', hosts: 12, backend: 'vxlan', ipv6: true });
    assert.equal(plan.hosts[11].ipv6Subnet, 'fd00:10:244:c::/64');
    assert.equal(plan.hosts[11].vtepMAC, '02:00:0a:f4:0c:00');
    const p = plan.pods.find((x) => x.name === 'h12-b');
    assert.deepEqual([p?.ip, p?.ipv6], ['10.244.12.3', 'fd00:10:244:c::3']);
    const snap = reparse(plan);
    assert.equal(snap.config.ipv6Network, 'fd00:10:244::/56');
    assert.equal(snap.endpoints.find((e) => e.name === 'h12-b')?.ipv6, 'fd00:10:244:c::3');
  });

  it('-f manifests: nodeName honoured, the rest round-robin, policies passed through, namespaces completed', () => {
    const docs = parseManifestText(`
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: web } }
---
apiVersion: v1
kind: Pod
metadata: { name: db, namespace: shop, labels: { role: db } }
spec: { nodeName: h2, containers: [{ name: c, image: x }] }
status: { podIP: 192.168.9.9 }
---
apiVersion: v1
kind: Pod
metadata: { name: web1, namespace: shop }
---
kind: List
apiVersion: v1
items:
  - { apiVersion: v1, kind: Pod, metadata: { name: web2, namespace: shop } }
  - { apiVersion: v1, kind: Pod, metadata: { name: loose } }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: db-ingress, namespace: shop }
spec: { podSelector: { matchLabels: { role: db } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: web } } }] }] }
---
`, 'shop.yaml');
    assert.equal(docs.length, 6);
    assert.equal(docs[3].where, 'shop.yaml: document 4 item 1');
    const plan = planLab({ name: 'lab', hosts: 2, backend: 'vxlan', ipv6: false, docs });
    assert.deepEqual(plan.pods.map((p) => `${p.namespace}/${p.name}@${p.host}=${p.ip}`), [
      'shop/db@h2=10.244.2.2', 'shop/web1@h1=10.244.1.2', 'shop/web2@h2=10.244.2.3', 'default/loose@h1=10.244.1.3',
    ]);
    const snap = reparse(plan);
    const kinds = snap.manifests.map((m) => { const o = m as { kind: string; metadata: { name: string } }; return `${o.kind}/${o.metadata.name}`; });
    assert.deepEqual(kinds, ['Namespace/default', 'Namespace/shop', 'Pod/db', 'Pod/web1', 'Pod/web2', 'Pod/loose', 'NetworkPolicy/db-ingress']);
    assert.deepEqual(snap.manifests[6], docs[5].doc); // untouched
    const db = snap.manifests[2] as any;
    assert.deepEqual(db.spec, { nodeName: 'h2', containers: [{ name: 'c', image: 'x' }] });
    assert.deepEqual(db.status, { phase: 'Running', podIP: '10.244.2.2', podIPs: [{ ip: '10.244.2.2' }] }); // input status replaced
    assert.deepEqual((snap.manifests[1] as any).metadata.labels, { team: 'web', 'kubernetes.io/metadata.name': 'shop' });
    assert.equal(snap.endpoints.length, 4);
  });

  it('rejects unknown hosts, duplicate pods, too many hosts, with the document named', () => {
    const docs = parseManifestText('{ apiVersion: v1, kind: Pod, metadata: { name: a }, spec: { nodeName: h3 } }\n', 'p.yaml');
    assert.throws(() => planLab({ name: 'lab', hosts: 2, backend: 'vxlan', ipv6: false, docs }),
      { message: 'p.yaml: document 1: pod default/a: spec.nodeName "h3" is not a lab host (h1..h2)' });
    const dup = parseManifestText('{ apiVersion: v1, kind: Pod, metadata: { name: a } }\n---\n{ apiVersion: v1, kind: Pod, metadata: { name: a, namespace: default } }\n', 'd.yaml');
    assert.throws(() => planLab({ name: 'lab', hosts: 1, backend: 'vxlan', ipv6: false, docs: dup }),
      { message: 'd.yaml: document 2: pod default/a is defined twice (also d.yaml: document 1)' });
    assert.throws(() => planLab({ name: 'lab', hosts: 255, backend: 'vxlan', ipv6: false }), LabError);
    assert.throws(() => parseManifestText('kind: Pod\nmetadata: {}\n', 'x.yaml'), { message: 'x.yaml: document 1: expected a Kubernetes object with apiVersion, kind and metadata.name' });
    assert.throws(() => parseManifestText('a: [\n', 'y.yaml'), /^LabError: y\.yaml: document 1: line/);
    assert.throws(() => parseManifestText('kind: *x\n', 'z.yaml'), { message: /^z\.yaml: document 1: Unresolved alias/ });
  });

  it('pod netns names are sanitized and made unique', () => {
    const taken = new Set<string>();
    assert.equal(podNetns('lab', 'a-b', 'c', taken), 'lab-a-b-c');
    assert.equal(podNetns('lab', 'a', 'b-c', taken), 'lab-a-b-c-2');
    assert.equal(podNetns('lab', 'Web', 'x_y/z', taken), 'lab-web-x_y-z');
  });

  it('lab names cannot contain "-" (they prefix every namespace)', () => {
    assert.equal(checkLabName('sllt123'), 'sllt123');
    for (const bad of ['a-b', '', '1abc', 'UPPER', 'x'.repeat(25)]) assert.throws(() => checkLabName(bad), LabError);
  });

  it('loads directories of manifests in name order, and reports missing paths', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sllt-manifests-'));
    try {
      await mkdir(join(dir, 'm'));
      await writeFile(join(dir, 'm', 'b.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: { name: second }\n');
      await writeFile(join(dir, 'm', 'a.json'), '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"first"}}');
      await writeFile(join(dir, 'm', 'notes.txt'), 'ignored');
      const docs = await loadManifestPaths([join(dir, 'm')]);
      assert.deepEqual(docs.map((d) => (d.doc.metadata as { name: string }).name), ['first', 'second']);
      await assert.rejects(loadManifestPaths([join(dir, 'nope.yaml')]), { message: `-f ${join(dir, 'nope.yaml')}: no such file or directory` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('etcd labs: the last underlay address is etcd\'s; pods move into the leased subnets at the same offsets', () => {
    const plan = planLab({ name: 'lab', hosts: 2, backend: 'vxlan', ipv6: true, store: 'etcd' });
    assert.equal(plan.etcdIP, '10.99.0.254');
    assert.equal(planLab({ name: 'lab', hosts: 2, backend: 'vxlan', ipv6: false }).etcdIP, undefined);
    assert.throws(() => planLab({ name: 'lab', hosts: 254, backend: 'vxlan', ipv6: false, store: 'etcd' }), { message: /fewer than 254 hosts \(its last address is for etcd\)/ });

    const leases = [
      { name: 'h2', publicIP: '10.99.0.2', subnet: '10.244.7.0/24', ipv6Subnet: 'fd00:10:244:7::/64', vtepMAC: '02:00:0a:f4:07:00' },
      { name: 'h1', publicIP: '10.99.0.1', subnet: '10.244.40.0/24', ipv6Subnet: 'fd00:10:244:28::/64', vtepMAC: '02:00:0a:f4:28:00' },
    ];
    const r = readdress(plan, leases);
    assert.deepEqual(r.hosts.map((h) => [h.name, h.subnet, h.ipv6Subnet, h.vtepMAC]), [
      ['h1', '10.244.40.0/24', 'fd00:10:244:28::/64', '02:00:0a:f4:28:00'],
      ['h2', '10.244.7.0/24', 'fd00:10:244:7::/64', '02:00:0a:f4:07:00'],
    ]);
    assert.deepEqual(r.pods.map((p) => `${p.name}=${p.ip} ${p.ipv6}`), [
      'h1-a=10.244.40.2 fd00:10:244:28::2', 'h1-b=10.244.40.3 fd00:10:244:28::3',
      'h2-a=10.244.7.2 fd00:10:244:7::2', 'h2-b=10.244.7.3 fd00:10:244:7::3',
    ]);
    const pod = r.manifests.find((m) => (m as { kind: string; metadata: { name: string } }).kind === 'Pod'
      && (m as { metadata: { name: string } }).metadata.name === 'h2-b') as { status: unknown; spec: unknown };
    assert.deepEqual(pod.status, { phase: 'Running', podIP: '10.244.7.3', podIPs: [{ ip: '10.244.7.3' }, { ip: 'fd00:10:244:7::3' }] });
    assert.deepEqual(pod.spec, { nodeName: 'h2' });
    assert.equal(plan.pods[0].ip, '10.244.1.2', 'the plan itself is left alone');

    assert.throws(() => readdress(plan, leases.slice(0, 1)), { message: /^host h1 holds no subnet lease in etcd \(leases: h2 10\.244\.7\.0\/24\)/ });
    assert.throws(() => readdress(plan, [leases[0], { ...leases[1], publicIP: '10.99.0.9' }]), { message: /belongs to 10\.99\.0\.9, not to this lab's h1 \(10\.99\.0\.1\)/ });
    assert.throws(() => readdress(plan, leases.map((l) => ({ ...l, ipv6Subnet: undefined }))), { message: /has no IPv6 subnet/ });
  });
});
