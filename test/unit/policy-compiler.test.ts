// Compiler and evaluator: the snapshot is plain data that survives structuredClone and
// a real worker thread; its indexes (per-endpoint ordered policy lists, deduplicated
// selector sets, merged port ranges); generations; 10,000 policies.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { compile, comparePolicies } from '../../src/policy/compiler.js';
import { evaluate, type FlowQuery } from '../../src/policy/evaluator.js';
import { buildResourceSet, loadManifests, parseManifestText, readManifestFiles, resourcesFromObjects } from '../../src/policy/manifests.js';
import type { Policy } from '../../src/policy/model.js';
import { FIXTURES, E2E_MODEL, IP, PODS } from '../fixtures/policy/harness.js';

const e2eWithPolicies = () => compile(buildResourceSet(readManifestFiles([E2E_MODEL, `${FIXTURES}e2e-policies.yaml`])));

function allFlows(): FlowQuery[] {
  const flows: FlowQuery[] = [];
  for (const from of PODS) {
    for (const to of PODS) {
      for (const [protocol, dstPort] of [[6, 80], [6, 81], [17, 80], [132, 80]]) {
        flows.push({ src: IP[from], dst: IP[to], protocol, srcPort: 40000, dstPort });
      }
    }
    flows.push({ src: IP[from], dst: '192.0.2.1', protocol: 1, srcPort: 0, dstPort: 0, icmpType: 8, icmpCode: 0 });
    flows.push({ src: '192.0.2.1', dst: IP[from], protocol: 6, srcPort: 40000, dstPort: 80 });
  }
  return flows;
}

describe('policy snapshot', () => {
  it('is plain data: a structuredClone evaluates every flow identically', () => {
    const s = e2eWithPolicies();
    const clone = structuredClone(s);
    for (const f of allFlows()) assert.deepEqual(evaluate(clone, f), evaluate(s, f), JSON.stringify(f));
  });

  it('can be posted to a worker thread once and evaluated there', async () => {
    const s = e2eWithPolicies();
    const flows = allFlows();
    const evaluatorUrl = new URL('../../src/policy/evaluator.js', import.meta.url).href;
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.evaluatorUrl).then(({ evaluate }) => {
        parentPort.once('message', ({ snapshot, flows }) => {
          parentPort.postMessage(flows.map((f) => evaluate(snapshot, f)));
        });
        parentPort.postMessage('ready');
      });`, { eval: true, workerData: { evaluatorUrl } });
    try {
      const results = await new Promise<unknown[]>((resolve, reject) => {
        worker.on('error', reject);
        worker.on('message', (m: unknown) => {
          if (m === 'ready') worker.postMessage({ snapshot: s, flows });
          else resolve(m as unknown[]);
        });
      });
      assert.equal(results.length, flows.length);
      flows.forEach((f, i) => assert.deepEqual(results[i], evaluate(s, f)));
    } finally {
      await worker.terminate();
    }
  });

  it('indexes each endpoint with the policies that select it, in evaluation order', () => {
    const s = e2eWithPolicies();
    const ep = (key: string) => s.endpoints.find((e) => e.key === key)!;
    const ids = (list: Int32Array) => [...list].map((i) => s.policies[i].id);
    assert.deepEqual(s.policies.map((p) => [p.id, p.order]), [
      ['GlobalNetworkPolicy/block-yc', 10],
      ['KubernetesNetworkPolicy/x/a-from-y', 1000],
      ['KubernetesNetworkPolicy/x/deny-all', 1000],
    ]);
    assert.deepEqual(ids(ep('x/a').ingress), ['GlobalNetworkPolicy/block-yc', 'KubernetesNetworkPolicy/x/a-from-y', 'KubernetesNetworkPolicy/x/deny-all']);
    assert.deepEqual(ids(ep('x/b').ingress), ['GlobalNetworkPolicy/block-yc', 'KubernetesNetworkPolicy/x/deny-all']);
    assert.deepEqual(ids(ep('x/b').egress), []);
    assert.deepEqual(ids(ep('y/a').ingress), []);
    assert.equal(s.endpointByIP.get('10.0.1.10'), s.endpoints.indexOf(ep('x/a')));
  });

  it('deduplicates selector sets and merges port ranges', () => {
    const rules = Array.from({ length: 20 }, (_, i) => `    - action: Allow
      protocol: TCP
      source: {selector: pod == 'b'}
      destination: {ports: ['80:90', 85, '91:95', 100, 99, named-${i % 2}]}`).join('\n');
    const s = compile(buildResourceSet([
      ...readManifestFiles([E2E_MODEL]),
      ...parseManifestText(`apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: many, namespace: x}
spec:
  ingress:
${rules}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: other-ns, namespace: y}
spec:
  ingress:
    - action: Allow
      source: {selector: pod == 'b'}
`, 'p.yaml'),
    ]));
    const x = s.policies.find((p) => p.id === 'CalicoNetworkPolicy/x/many')!;
    const y = s.policies.find((p) => p.id === 'CalicoNetworkPolicy/y/other-ns')!;
    assert.equal(new Set(x.ingress.map((r) => r.src!.selector)).size, 1, 'one set for the same scoped selector');
    assert.notEqual(y.ingress[0].src!.selector, x.ingress[0].src!.selector, 'a different namespace scope is a different set');
    assert.deepEqual([...x.ingress[0].dst!.ports!.ranges], [80, 95, 99, 100]);
    assert.deepEqual(x.ingress[1].dst!.ports!.names, ['named-1']);
    // x/b's bit is the only one set in the x-scoped set.
    const members = s.endpoints.filter((_, i) => (s.sets[x.ingress[0].src!.selector][i >>> 5] >>> (i & 31)) & 1).map((e) => e.key);
    assert.deepEqual(members, ['x/b']);
  });

  it('stamps generations: explicit, or one more than the last compile', () => {
    const set = loadManifests([E2E_MODEL]);
    assert.equal(compile(set, { generation: 41 }).generation, 41);
    assert.equal(compile(set).generation, 42);
    assert.equal(compile(set).generation, 43);
    const s = compile(set, { generation: 100 });
    assert.equal(evaluate(s, { src: IP['x/a'], dst: IP['y/a'], protocol: 6, srcPort: 1, dstPort: 80 }).generation, 100);
  });

  it('orders policies like Calico: order, unset last, then name, namespace, kind', () => {
    const base = { selector: undefined, types: { ingress: true, egress: false }, ingress: [], egress: [] };
    const p = (kind: Policy['kind'], sortName: string, order?: number, namespace?: string) =>
      ({ ...base, kind, name: sortName, sortName, order, namespace, id: `${kind}/${namespace ?? ''}/${sortName}` }) as unknown as Policy;
    const list = [
      p('CalicoNetworkPolicy', 'b', undefined, 'x'),
      p('GlobalNetworkPolicy', 'a'),
      p('KubernetesNetworkPolicy', 'knp.default.z', 1000, 'x'),
      p('CalicoNetworkPolicy', 'a', 1000, 'y'),
      p('CalicoNetworkPolicy', 'a', 1000, 'x'),
      p('CalicoNetworkPolicy', 'z', 5.5, 'x'),
      p('GlobalNetworkPolicy', 'a', 1000),
    ];
    assert.deepEqual([...list].sort(comparePolicies).map((q) => q.id), [
      'CalicoNetworkPolicy/x/z',
      'GlobalNetworkPolicy//a',
      'CalicoNetworkPolicy/x/a',
      'CalicoNetworkPolicy/y/a',
      'KubernetesNetworkPolicy/x/knp.default.z',
      'GlobalNetworkPolicy//a',
      'CalicoNetworkPolicy/x/b',
    ]);
    const sorted = [...list].sort(comparePolicies);
    assert.equal(sorted[1].order, 1000);
    assert.equal(sorted[5].order, undefined);
  });

  it('rejects flows whose addresses are not IPs', () => {
    const s = e2eWithPolicies();
    assert.throws(() => evaluate(s, { src: 'x/a', dst: IP['x/b'], protocol: 6, srcPort: 1, dstPort: 80 }), {
      name: 'TypeError', message: 'evaluate: invalid source address "x/a"',
    });
    assert.throws(() => evaluate(s, { src: IP['x/a'], dst: '10.0.0.256', protocol: 6, srcPort: 1, dstPort: 80 }), TypeError);
  });

  it('an empty resource set allows everything', () => {
    const s = compile(buildResourceSet([]));
    const v = evaluate(s, { src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, srcPort: 1, dstPort: 2 });
    assert.equal(v.allowed, true);
    assert.equal(v.egress.reason, 'not-an-endpoint');
  });
});

describe('10,000 policies', () => {
  // 100 namespaces x 10 pods; per namespace 100 policies (half Kubernetes, half Calico):
  // policy k selects app<k % 10> and allows it TCP port 1000+k from app<(k+1) % 10>.
  const NS = 100, PODS_PER_NS = 10, POLICIES_PER_NS = 100;
  function objects(): unknown[] {
    const out: unknown[] = [];
    for (let n = 0; n < NS; n++) {
      out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns${n}`, labels: { idx: String(n) } } });
      for (let j = 0; j < PODS_PER_NS; j++) {
        out.push({
          apiVersion: 'v1', kind: 'Pod',
          metadata: { name: `p${j}`, namespace: `ns${n}`, labels: { app: `app${j}`, tier: `t${j % 3}` } },
          status: { podIP: `10.${n >> 4}.${(n & 15) * 16}.${j + 1}` },
        });
      }
      for (let k = 0; k < POLICIES_PER_NS; k++) {
        const me = `app${k % 10}`, peer = `app${(k + 1) % 10}`;
        out.push(k % 2 === 0
          ? {
            apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `k${k}`, namespace: `ns${n}` },
            spec: { podSelector: { matchLabels: { app: me } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: peer } } }], ports: [{ port: 1000 + k }] }] },
          }
          : {
            apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: `c${k}`, namespace: `ns${n}` },
            spec: { order: k, selector: `app == '${me}'`, ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: `app == '${peer}'` }, destination: { ports: [1000 + k] } }] },
          });
      }
    }
    return out;
  }
  const ip = (n: number, j: number) => `10.${n >> 4}.${(n & 15) * 16}.${j + 1}`;

  it('compile and evaluate correctly (timings reported, not asserted)', (t) => {
    const objs = objects();
    let t0 = performance.now();
    const set = resourcesFromObjects(objs, 'generated');
    const loadMs = performance.now() - t0;
    assert.equal(set.policies.length, NS * POLICIES_PER_NS);
    t0 = performance.now();
    const s = compile(set);
    const compileMs = performance.now() - t0;
    t0 = performance.now();
    const cloned = structuredClone(s);
    const cloneMs = performance.now() - t0;

    // Each pod is selected by exactly the 10 policies of its namespace with k % 10 == its index.
    const ep = s.endpoints[s.endpointByIP.get(ip(57, 3))!];
    assert.equal(ep.key, 'ns57/p3');
    assert.equal(ep.ingress.length, 10);
    assert.ok([...ep.ingress].every((i) => s.policies[i].namespace === 'ns57'));

    const q = (src: string, dst: string, port: number) => evaluate(cloned, { src, dst, protocol: 6, srcPort: 40000, dstPort: port });
    // ns57/p4 (app4) -> ns57/p3 (app3) on 1000+k with k % 10 == 3: k = 3 (Calico), 13 (Calico), ...
    const v = q(ip(57, 4), ip(57, 3), 1013);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.ingress, { allowed: true, endpoint: 'ns57/p3', policy: 'CalicoNetworkPolicy/ns57/c13', rule: 0, action: 'Allow', reason: 'rule' });
    // Even k are Kubernetes policies: k = 20 selects app0 and allows app1 on 1020.
    assert.equal(q(ip(57, 1), ip(57, 0), 1020).ingress.policy, 'KubernetesNetworkPolicy/ns57/k20');
    assert.equal(q(ip(57, 1), ip(57, 0), 1020).allowed, true);
    assert.equal(q(ip(57, 4), ip(57, 3), 1014).allowed, false, 'port of a policy that selects other pods');
    assert.equal(q(ip(58, 4), ip(57, 3), 1013).allowed, false, 'peer selector is scoped to the namespace');
    assert.equal(q(ip(57, 5), ip(57, 3), 1013).allowed, false, 'wrong peer');
    assert.equal(q(ip(57, 3), '192.0.2.1', 443).allowed, true, 'egress is not isolated');

    const flows: FlowQuery[] = [];
    for (let i = 0; i < 20000; i++) {
      const n = i % NS, j = (i * 7) % PODS_PER_NS;
      flows.push({ src: ip((n + 1) % NS, (j + 1) % 10), dst: ip(n, j), protocol: 6, srcPort: 40000, dstPort: 1000 + (i % 100) });
    }
    t0 = performance.now();
    let allowed = 0;
    for (const f of flows) if (evaluate(cloned, f).allowed) allowed++;
    const evalUs = ((performance.now() - t0) * 1000) / flows.length;
    assert.equal(allowed, 0, 'peers in another namespace never match');
    t.diagnostic(`load ${loadMs.toFixed(0)} ms, compile ${compileMs.toFixed(0)} ms, structuredClone ${cloneMs.toFixed(0)} ms, evaluate ${evalUs.toFixed(2)} us/flow`);
  });
});
