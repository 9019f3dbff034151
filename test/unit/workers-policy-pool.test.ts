import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { FlowKey } from '../../src/packet/flow-key.js';
import { IpProto } from '../../src/packet/proto.js';
import { evaluate } from '../../src/policy/evaluator.js';
import { Decision, H_COUNT, H_GENERATION, Side } from '../../src/workers/batch-format.js';
import { InlineEvaluator } from '../../src/workers/evaluator.js';
import { PolicyPool } from '../../src/workers/policy-pool.js';
import {
  allowIngressFrom, basicSnapshot, calicoDenyEgress, ip4, ns, pod, requestOf, resultAt, snapshotOf, type FlowSpec,
} from './flow-fixtures.js';

const tcp = (src: string, dst: string, sport: number, dport: number): FlowKey =>
  new FlowKey().setV4(IpProto.TCP, ip4(src), ip4(dst), sport, dport);

const POLICIES = [allowIngressFrom('x', 'pa', 'a', 'b', 80), calicoDenyEgress('y', 'deny-b', 'b', 81)];

describe('PolicyPool', () => {
  let pool: PolicyPool;
  before(() => { pool = new PolicyPool({ threads: 2 }); });
  after(async () => { await pool.close(); });

  it('evaluates a batch of misses in the workers against the broadcast snapshot', async () => {
    const s = basicSnapshot(POLICIES);
    pool.setSnapshot(s, 1);
    const pa = s.policies.findIndex((p) => p.id === 'KubernetesNetworkPolicy/x/pa');
    const denyB = s.policies.findIndex((p) => p.id === 'CalicoNetworkPolicy/y/deny-b');
    const flows: FlowSpec[] = [
      { key: tcp('10.0.1.11', '10.0.1.10', 40000, 80), sides: Side.Egress | Side.Ingress }, // x/b -> x/a:80 allowed
      { key: tcp('10.0.2.10', '10.0.1.10', 40000, 80), sides: Side.Ingress }, // y/a -> x/a: not from pod=b in x
      { key: tcp('10.0.1.11', '10.0.1.10', 40000, 81), sides: Side.Egress | Side.Ingress }, // port 81 not allowed
      { key: tcp('10.0.2.11', '10.0.9.9', 40000, 81), sides: Side.Egress }, // y/b egress to :81 logged + denied
      { key: tcp('10.0.2.11', '10.0.9.9', 40000, 82), sides: Side.Egress }, // y/b egress elsewhere: allowed by rule 2
      { key: tcp('10.0.2.10', '10.0.1.10', 40000, 80), sides: Side.Egress }, // only y/a's egress: no policy
      { key: tcp('10.0.2.10', '10.0.1.10', 40000, 80), sides: 0 }, // nothing local
    ];
    const res = await pool.evaluate(requestOf(flows, 1));
    assert.equal(res[H_GENERATION], 1);
    assert.equal(res[H_COUNT], flows.length);
    assert.deepEqual(resultAt(res, 0), {
      egress: Decision.NoPolicy, egressPolicy: -1, egressRule: -1,
      ingress: Decision.RuleAllow, ingressPolicy: pa, ingressRule: 0, logSide: 0, logPolicy: -1, logRule: -1,
    });
    assert.equal(resultAt(res, 1).ingress, Decision.DefaultDeny);
    assert.equal(resultAt(res, 1).egress, Decision.NotChecked);
    assert.equal(resultAt(res, 2).ingress, Decision.DefaultDeny);
    assert.deepEqual(resultAt(res, 3), {
      egress: Decision.RuleDeny, egressPolicy: denyB, egressRule: 1,
      ingress: Decision.NotChecked, ingressPolicy: -1, ingressRule: -1, logSide: Side.Egress, logPolicy: denyB, logRule: 0,
    });
    assert.equal(resultAt(res, 4).egress, Decision.RuleAllow);
    assert.equal(resultAt(res, 4).egressRule, 2);
    assert.equal(resultAt(res, 5).egress, Decision.NoPolicy);
    assert.equal(resultAt(res, 5).ingress, Decision.NotChecked);
    assert.equal(resultAt(res, 6).egress, Decision.NotChecked);
    assert.equal(resultAt(res, 6).ingress, Decision.NotChecked);
  });

  it('every worker gets a new snapshot once, before the tasks that need it', async () => {
    const flow: FlowSpec[] = [{ key: tcp('10.0.2.10', '10.0.1.10', 1, 80), sides: Side.Ingress }];
    pool.setSnapshot(basicSnapshot([]), 2);
    // Several tasks at once, so both workers run some.
    const before = await Promise.all(Array.from({ length: 8 }, () => pool.evaluate(requestOf(flow, 2))));
    for (const r of before) {
      assert.equal(r[H_GENERATION], 2);
      assert.equal(resultAt(r, 0).ingress, Decision.NoPolicy);
    }
    pool.setSnapshot(basicSnapshot(POLICIES), 3);
    const afterChange = await Promise.all(Array.from({ length: 8 }, () => pool.evaluate(requestOf(flow, 3))));
    for (const r of afterChange) {
      assert.equal(r[H_GENERATION], 3);
      assert.equal(resultAt(r, 0).ingress, Decision.DefaultDeny);
    }
  });

  it('rejects a snapshot generation that is not newer', () => {
    assert.throws(() => pool.setSnapshot(undefined, 3), /PolicyPool.setSnapshot: generation 3 is not newer than 3/);
  });
});

describe('PolicyPool snapshot delivery', () => {
  it('a worker that started after the broadcast asks for the snapshot and gets it', async () => {
    const pool = new PolicyPool({ threads: 1, snapshotAskAfterMs: 20 });
    try {
      // Broadcast before the worker has loaded (it cannot have heard this one).
      pool.setSnapshot(basicSnapshot(POLICIES), 5);
      const res = await pool.evaluate(requestOf([{ key: tcp('10.0.2.10', '10.0.1.10', 1, 80), sides: Side.Ingress }], 5));
      assert.equal(res[H_GENERATION], 5);
      assert.equal(resultAt(res, 0).ingress, Decision.DefaultDeny);
      assert.ok(pool.rebroadcasts >= 1, 'the worker asked and the pool sent it again');
    } finally {
      await pool.close();
    }
  });

  it('a task whose generation never arrives fails with a clear error', async () => {
    const pool = new PolicyPool({ threads: 1, snapshotAskAfterMs: 10, snapshotTimeoutMs: 150 });
    try {
      pool.setSnapshot(basicSnapshot([]), 1);
      await assert.rejects(
        pool.evaluate(requestOf([{ key: tcp('10.0.2.10', '10.0.1.10', 1, 80), sides: Side.Ingress }], 9)),
        /policy worker: snapshot generation 9 did not arrive within 150 ms \(have 1\)/,
      );
    } finally {
      await pool.close();
    }
  });

  it('rejects bad options with the option named', () => {
    assert.throws(() => new PolicyPool({ threads: 0 }), /PolicyPool: threads must be a positive integer, got 0/);
  });
});

// --- inline and pool agree, and both agree with evaluate() ---------------------------

const RICH = [
  ns('x'), ns('y'), ns('z'),
  pod('x', 'a', '10.0.1.10', { app: 'web' }), pod('x', 'b', '10.0.1.11'), pod('x', 'c', '10.0.1.12', { app: 'db' }),
  pod('y', 'a', '10.0.2.10', { app: 'web' }), pod('y', 'b', '10.0.2.11'), pod('z', 'a', '10.0.3.10'),
  allowIngressFrom('x', 'pa', 'a', 'b', 80),
  calicoDenyEgress('y', 'deny-b', 'b', 81),
  {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'db', namespace: 'x' },
    spec: {
      podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }] }],
      egress: [{ ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 1000, endPort: 2000 }] }],
    },
  },
  {
    apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'web' },
    spec: {
      order: 5, selector: "app == 'web'", types: ['Ingress'],
      ingress: [
        { action: 'Deny', protocol: 'TCP', source: { nets: ['10.0.3.0/24'] } },
        { action: 'Pass', protocol: 'UDP' },
        { action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } },
        { action: 'Allow', protocol: 'TCP', destination: { ports: ['80:90', 443] } },
      ],
    },
  },
];

const ADDRS = ['10.0.1.10', '10.0.1.11', '10.0.1.12', '10.0.2.10', '10.0.2.11', '10.0.3.10', '192.168.2.7', '192.168.1.7', '8.8.8.8'];

const flowArb = fc.record({
  src: fc.constantFrom(...ADDRS),
  dst: fc.constantFrom(...ADDRS),
  protocol: fc.constantFrom(IpProto.TCP, IpProto.UDP, IpProto.ICMP, IpProto.SCTP),
  sport: fc.integer({ min: 0, max: 65535 }),
  dport: fc.oneof(fc.constantFrom(53, 80, 81, 85, 443, 1000, 1500, 2000, 2001), fc.integer({ min: 0, max: 65535 })),
  icmpType: fc.constantFrom(0, 3, 8),
  sides: fc.integer({ min: 0, max: 3 }),
});

function keyOf(f: { src: string; dst: string; protocol: number; sport: number; dport: number; icmpType: number }): FlowKey {
  const k = new FlowKey().setV4(f.protocol, ip4(f.src), ip4(f.dst), f.sport, f.dport);
  if (f.protocol === IpProto.ICMP) {
    k.srcPort = k.dstPort = f.sport;
    k.icmpType = f.icmpType;
  }
  return k;
}

describe('inline and pool evaluation', () => {
  it('give identical verdicts for random flows, and match evaluate() on the checked sides', async () => {
    const s = snapshotOf(RICH);
    const pool = new PolicyPool({ threads: 2 });
    const inline = new InlineEvaluator();
    pool.setSnapshot(s, 1);
    inline.setSnapshot(s, 1);
    try {
      await fc.assert(fc.asyncProperty(fc.array(flowArb, { minLength: 1, maxLength: 64 }), async (flows) => {
        const specs = flows.map((f) => ({ key: keyOf(f), sides: f.sides }));
        const a = await pool.evaluate(requestOf(specs, 1));
        const b = await inline.evaluate(requestOf(specs, 1));
        assert.deepEqual(Array.from(a), Array.from(b));
        flows.forEach((f, i) => {
          const icmp = f.protocol === IpProto.ICMP;
          const v = evaluate(s, {
            src: f.src, dst: f.dst, protocol: f.protocol, srcPort: icmp ? 0 : f.sport, dstPort: icmp ? 0 : f.dport,
            icmpType: icmp ? f.icmpType : undefined, icmpCode: icmp ? 0 : undefined,
          });
          const r = resultAt(a, i);
          const allowed = (r.egress < Decision.RuleDeny) && (r.ingress < Decision.RuleDeny);
          const expected = ((f.sides & Side.Egress) === 0 || v.egress.allowed) && ((f.sides & Side.Ingress) === 0 || v.ingress.allowed);
          assert.equal(allowed, expected, `flow ${JSON.stringify(f)}`);
        });
      }), { numRuns: 60 });
    } finally {
      await pool.close();
    }
  });
});
