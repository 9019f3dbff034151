// Calico projectcalico.org/v3 NetworkPolicy / GlobalNetworkPolicy semantics on the
// e2e model (namespaces x, y, z; pods a, b, c): order and ties, Deny/Allow/Pass/Log,
// nets/notNets, selector/notSelector scoping, namespaceSelector, ports, ranges, notPorts,
// protocol/notProtocol, ICMP, and Kubernetes + Calico policies evaluated together.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile } from '../../src/policy/compiler.js';
import { evaluate } from '../../src/policy/evaluator.js';
import { buildResourceSet, parseManifestText } from '../../src/policy/manifests.js';
import { ALL_ALLOWED, DENY_INGRESS_X, assertTables, check, k8sPolicy as knp, snapshotWith } from '../fixtures/policy/harness.js';

function indent(spec: string): string {
  return spec.replace(/^\n/, '').replace(/\s+$/, '');
}

function cnp(ns: string, name: string, spec: string): string {
  return `---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
${indent(spec)}
`;
}

function gnp(name: string, spec: string): string {
  return `---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: ${name}}
spec:
${indent(spec)}
`;
}

const DENY_Y_INTO_X = (order: string, name = 'deny-y', ns = 'x'): string => cnp(ns, name, `
  ${order}
  ingress:
    - action: Deny
      source: {namespaceSelector: ns == 'y'}`);

const ALLOW_ALL_X = (order: string, name = 'allow-all'): string => cnp('x', name, `
  ${order}
  ingress:
    - action: Allow`);

const K8S_ALLOW_ALL_X = knp('x', 'allow-all', `
  podSelector: {}
  ingress: [{}]`);

const Y_BLOCKED_INTO_X = `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`;

const ALL4 = 'TCP/80,TCP/81,UDP/80,UDP/81';

interface Case {
  name: string;
  yaml: string;
  tables: Record<string, string>;
}

const cases: Case[] = [
  {
    name: 'order: a Deny at order 10 runs before an Allow at order 20',
    yaml: gnp('deny-y-into-x', `
  order: 10
  selector: projectcalico.org/namespace == 'x'
  ingress:
    - action: Deny
      source: {namespaceSelector: ns == 'y'}`) + ALLOW_ALL_X('order: 20'),
    tables: { [ALL4]: Y_BLOCKED_INTO_X },
  },
  {
    name: 'order: an Allow at order 5 runs before a Deny at order 10',
    yaml: DENY_Y_INTO_X('order: 10') + ALLOW_ALL_X('order: 5'),
    tables: { [ALL4]: ALL_ALLOWED },
  },
  {
    name: 'equal order: ties broken by name (a-deny before b-allow)',
    yaml: DENY_Y_INTO_X('order: 100', 'a-deny') + ALLOW_ALL_X('order: 100', 'b-allow'),
    tables: { [ALL4]: Y_BLOCKED_INTO_X },
  },
  {
    name: 'equal order: ties broken by name (a-allow before b-deny)',
    yaml: DENY_Y_INTO_X('order: 100', 'b-deny') + ALLOW_ALL_X('order: 100', 'a-allow'),
    tables: { [ALL4]: ALL_ALLOWED },
  },
  {
    name: 'no order = after every ordered policy (even order 50000)',
    yaml: DENY_Y_INTO_X('', 'aa-deny') + ALLOW_ALL_X('order: 50000', 'zz-allow'),
    tables: { [ALL4]: ALL_ALLOWED },
  },
  {
    name: 'no order = after every ordered policy (the ordered Deny wins)',
    yaml: DENY_Y_INTO_X('order: 1000000', 'zz-deny') + ALLOW_ALL_X('', 'aa-allow'),
    tables: { [ALL4]: Y_BLOCKED_INTO_X },
  },
  {
    name: 'Kubernetes policies have order 1000: a Calico Deny at 999 runs first',
    yaml: K8S_ALLOW_ALL_X + DENY_Y_INTO_X('order: 999'),
    tables: { [ALL4]: Y_BLOCKED_INTO_X },
  },
  {
    name: 'Kubernetes policies have order 1000: a Calico Deny at 1001 runs after',
    yaml: K8S_ALLOW_ALL_X + DENY_Y_INTO_X('order: 1001'),
    tables: { [ALL4]: ALL_ALLOWED },
  },
  {
    name: 'Kubernetes policies run before Calico policies without order',
    yaml: K8S_ALLOW_ALL_X + DENY_Y_INTO_X(''),
    tables: { [ALL4]: ALL_ALLOWED },
  },
  {
    name: 'tie at 1000: Calico "a-deny" sorts before Kubernetes "knp.default.allow-all"',
    yaml: K8S_ALLOW_ALL_X + DENY_Y_INTO_X('order: 1000', 'a-deny'),
    tables: { [ALL4]: Y_BLOCKED_INTO_X },
  },
  {
    name: 'tie at 1000: Calico "zz-deny" sorts after Kubernetes "knp.default.allow-all"',
    yaml: K8S_ALLOW_ALL_X + DENY_Y_INTO_X('order: 1000', 'zz-deny'),
    tables: { [ALL4]: ALL_ALLOWED },
  },
  {
    name: 'rules run in order inside a policy: Deny x/b, then Allow (selector scoped to x)',
    yaml: cnp('x', 'deny-b', `
  ingress:
    - action: Deny
      source: {selector: pod == 'b'}
    - action: Allow`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'Pass skips the rest of the tier (a later Deny and a K8s deny-all) and the profile allows',
    yaml: cnp('x', 'pass-z', `
  order: 1
  selector: pod == 'a'
  ingress:
    - action: Pass
      source: {namespaceSelector: ns == 'z'}`) + cnp('x', 'deny-z', `
  order: 2
  ingress:
    - action: Deny
      source: {namespaceSelector: ns == 'z'}`) + knp('x', 'deny-all', `
  podSelector: {}
  policyTypes: [Ingress]`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   X   X   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   .   X   X   .   .   .   .   .   .
z/b   .   X   X   .   .   .   .   .   .
z/c   .   X   X   .   .   .   .   .   .`,
    },
  },
  {
    name: 'a policy with only Log rules still selects the pods: they are default-deny',
    yaml: cnp('x', 'log-only', `
  ingress:
    - action: Log`),
    tables: { [ALL4]: DENY_INGRESS_X },
  },
  {
    name: 'notNets: x from anywhere but z (10.0.3.0/24)',
    yaml: gnp('not-z', `
  selector: projectcalico.org/namespace == 'x'
  ingress:
    - action: Allow
      source: {notNets: [10.0.3.0/24]}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .`,
    },
  },
  {
    name: 'notSelector in a namespaced policy: limited to the policy namespace (x minus pod b)',
    yaml: cnp('x', 'not-b', `
  ingress:
    - action: Allow
      source: {notSelector: pod == 'b'}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .`,
    },
  },
  {
    name: 'notSelector in a global policy: everything except the pods it selects',
    yaml: gnp('not-b', `
  selector: projectcalico.org/namespace == 'x'
  ingress:
    - action: Allow
      source: {notSelector: pod == 'b'}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'ports "80:90" minus notPorts [81], TCP only',
    yaml: cnp('x', 'range', `
  ingress:
    - action: Allow
      protocol: TCP
      destination: {ports: ['80:90'], notPorts: [81]}`),
    tables: { 'TCP/80,TCP/90': ALL_ALLOWED, 'TCP/81,TCP/91,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'ports range "1000:2000" is inclusive, ORed with a single port',
    yaml: cnp('x', 'range', `
  ingress:
    - action: Allow
      protocol: UDP
      destination: {ports: ['1000:2000', 80]}`),
    tables: {
      'UDP/80,UDP/1000,UDP/1500,UDP/2000': ALL_ALLOWED,
      'UDP/999,UDP/2001,UDP/81,TCP/80,TCP/81,TCP/1000': DENY_INGRESS_X,
    },
  },
  {
    name: 'named port in destination.ports resolves on the destination pod',
    yaml: cnp('x', 'named', `
  ingress:
    - action: Allow
      destination: {ports: [serve-81-tcp]}`),
    tables: { 'TCP/81': ALL_ALLOWED, 'TCP/80,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'notProtocol: TCP is refused, everything else allowed',
    yaml: cnp('x', 'not-tcp', `
  ingress:
    - action: Allow
      notProtocol: TCP`),
    tables: { 'UDP/80,UDP/81,SCTP/80': ALL_ALLOWED, 'TCP/80,TCP/81': DENY_INGRESS_X },
  },
  {
    name: 'protocol by number (17 = UDP)',
    yaml: cnp('x', 'udp', `
  ingress:
    - action: Allow
      protocol: 17`),
    tables: { 'UDP/80,UDP/81': ALL_ALLOWED, 'TCP/80,TCP/81,SCTP/80': DENY_INGRESS_X },
  },
  {
    name: 'GlobalNetworkPolicy with a namespaceSelector: pods c of x and z, only from pods a anywhere',
    yaml: gnp('c-from-a', `
  namespaceSelector: ns in {'x', 'z'}
  selector: pod == 'c'
  ingress:
    - action: Allow
      source: {selector: pod == 'a'}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   X   .   .   .   .   .   X
x/c   .   .   .   .   .   .   .   .   X
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   X   .   .   .   .   .   X
y/c   .   .   X   .   .   .   .   .   X
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   X   .   .   .   .   .   X
z/c   .   .   X   .   .   .   .   .   .`,
    },
  },
  {
    name: 'rule namespaceSelector with selector in a namespaced policy: x only from z/b and z/c',
    yaml: cnp('x', 'from-z', `
  ingress:
    - action: Allow
      source: {namespaceSelector: ns == 'z', selector: pod != 'a'}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   X   X   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'rule namespaceSelector all(): pods b of every namespace',
    yaml: cnp('x', 'from-all-b', `
  ingress:
    - action: Allow
      source: {namespaceSelector: all(), selector: pod == 'b'}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   X   X   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .`,
    },
  },
  {
    name: 'types default to [Egress] when only egress rules exist; destination selector scoped to x',
    yaml: cnp('x', 'a-to-c', `
  selector: pod == 'a'
  egress:
    - action: Allow
      destination: {selector: pod == 'c'}`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   .   X   X   X   X   X   X
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'types [Ingress, Egress] without rules isolates both directions',
    yaml: cnp('x', 'isolate-a', `
  selector: pod == 'a'
  types: [Ingress, Egress]`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   X   X   X   X   X   X
x/b   X   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   X   .   .   .   .   .   .   .   .
y/b   X   .   .   .   .   .   .   .   .
y/c   X   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'global egress Deny to y nets, then Allow: nobody reaches y except by loopback',
    yaml: gnp('no-y', `
  types: [Egress]
  egress:
    - action: Deny
      destination: {nets: [10.0.2.0/24]}
    - action: Allow`),
    tables: {
      [ALL4]: `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   X   X   X   .   .   .
x/b   .   .   .   X   X   X   .   .   .
x/c   .   .   .   X   X   X   .   .   .
y/a   .   .   .   .   X   X   .   .   .
y/b   .   .   .   X   .   X   .   .   .
y/c   .   .   .   X   X   .   .   .   .
z/a   .   .   .   X   X   X   .   .   .
z/b   .   .   .   X   X   X   .   .   .
z/c   .   .   .   X   X   X   .   .   .`,
    },
  },
];

describe('Calico policy truth tables (e2e model)', () => {
  for (const c of cases) {
    it(c.name, () => {
      assertTables(snapshotWith(c.yaml), c.tables, c.name);
    });
  }
});

describe('Calico verdict details', () => {
  it('Deny reports policy, rule and action; Pass reports allowed with action Pass', () => {
    const s = snapshotWith(cnp('x', 'pass-z', `
  order: 1
  ingress:
    - action: Log
    - action: Pass
      source: {namespaceSelector: ns == 'z'}
    - action: Deny
      source: {namespaceSelector: ns == 'y'}`));
    const denied = check(s, 'y/a', 'x/b', 'TCP/80');
    assert.deepEqual(denied.ingress, {
      allowed: false, endpoint: 'x/b', policy: 'CalicoNetworkPolicy/x/pass-z', rule: 2, action: 'Deny', reason: 'rule',
    });
    const passed = check(s, 'z/a', 'x/b', 'TCP/80');
    assert.deepEqual(passed.ingress, {
      allowed: true, endpoint: 'x/b', policy: 'CalicoNetworkPolicy/x/pass-z', rule: 1, action: 'Pass', reason: 'rule',
    });
    assert.equal(passed.allowed, true);
    assert.deepEqual(passed.logs, [{ direction: 'ingress', endpoint: 'x/b', policy: 'CalicoNetworkPolicy/x/pass-z', rule: 0 }]);
  });

  it('Log records every Log rule passed through, egress first, and continues', () => {
    const s = snapshotWith(gnp('log-egress', `
  order: 1
  types: [Egress]
  egress:
    - action: Log
      protocol: TCP
    - action: Log
      protocol: UDP
`) + cnp('y', 'log-then-allow', `
  order: 5
  ingress:
    - action: Log
      source: {namespaceSelector: ns == 'x'}
    - action: Allow
`) + gnp('allow-egress', `
  order: 2
  types: [Egress]
  egress:
    - action: Allow`));
    const v = check(s, 'x/a', 'y/b', 'TCP/80');
    assert.equal(v.allowed, true);
    assert.deepEqual(v.logs, [
      { direction: 'egress', endpoint: 'x/a', policy: 'GlobalNetworkPolicy/log-egress', rule: 0 },
      { direction: 'ingress', endpoint: 'y/b', policy: 'CalicoNetworkPolicy/y/log-then-allow', rule: 0 },
    ]);
    assert.equal(v.egress.policy, 'GlobalNetworkPolicy/allow-egress');
    assert.deepEqual(check(s, 'z/a', 'y/b', 'UDP/80').logs, [
      { direction: 'egress', endpoint: 'z/a', policy: 'GlobalNetworkPolicy/log-egress', rule: 1 },
    ]);
    assert.deepEqual(check(s, 'z/a', 'y/b', 'SCTP/80').logs, []);
  });

  it('icmp type and code', () => {
    const s = snapshotWith(gnp('ping', `
  selector: projectcalico.org/namespace == 'x'
  ingress:
    - action: Allow
      protocol: ICMP
      icmp: {type: 8, code: 0}
    - action: Allow
      protocol: ICMP
      icmp: {type: 13}`));
    assert.equal(check(s, 'y/a', 'x/a', 'ICMP', { icmpType: 8, icmpCode: 0 }).allowed, true);
    assert.equal(check(s, 'y/a', 'x/a', 'ICMP', { icmpType: 8, icmpCode: 1 }).allowed, false);
    assert.equal(check(s, 'y/a', 'x/a', 'ICMP', { icmpType: 13, icmpCode: 5 }).allowed, true);
    assert.equal(check(s, 'y/a', 'x/a', 'ICMP', { icmpType: 0, icmpCode: 0 }).allowed, false);
    assert.equal(check(s, 'y/a', 'x/a', 'TCP/80').allowed, false);
  });

  it('notICMP excludes a type (any code) or one type/code pair', () => {
    const s = snapshotWith(cnp('x', 'no-echo', `
  ingress:
    - action: Allow
      protocol: ICMP
      notICMP: {type: 8}
`) + cnp('y', 'no-echo-code-1', `
  ingress:
    - action: Allow
      protocol: ICMP
      notICMP: {type: 8, code: 1}`));
    assert.equal(check(s, 'z/a', 'x/a', 'ICMP', { icmpType: 8, icmpCode: 0 }).allowed, false);
    assert.equal(check(s, 'z/a', 'x/a', 'ICMP', { icmpType: 0, icmpCode: 0 }).allowed, true);
    assert.equal(check(s, 'z/a', 'y/a', 'ICMP', { icmpType: 8, icmpCode: 0 }).allowed, true);
    assert.equal(check(s, 'z/a', 'y/a', 'ICMP', { icmpType: 8, icmpCode: 1 }).allowed, false);
  });

  it('source.ports match the source port; a named source port resolves on the source pod', () => {
    const s = snapshotWith(cnp('x', 'src-ports', `
  ingress:
    - action: Allow
      protocol: TCP
      source: {ports: ['1000:1999']}
    - action: Allow
      protocol: UDP
      source: {ports: [serve-80-udp]}`));
    assert.equal(check(s, 'y/a', 'x/a', 'TCP/80', { srcPort: 1500 }).allowed, true);
    assert.equal(check(s, 'y/a', 'x/a', 'TCP/80', { srcPort: 2000 }).allowed, false);
    assert.equal(check(s, 'y/a', 'x/a', 'UDP/9', { srcPort: 80 }).allowed, true);
    assert.equal(check(s, 'y/a', 'x/a', 'UDP/9', { srcPort: 81 }).allowed, false);
    assert.equal(check(s, '192.0.2.1', 'x/a', 'UDP/9', { srcPort: 80 }).allowed, false);
  });

  it('nets and selector in one side are ANDed; a selector never matches outside addresses', () => {
    const s = snapshotWith(cnp('x', 'and', `
  ingress:
    - action: Allow
      source: {nets: [10.0.0.0/8], selector: pod == 'a'}
    - action: Allow
      source: {nets: [192.0.2.0/24]}`));
    assert.equal(check(s, 'x/a', 'x/b', 'TCP/80').allowed, true);
    assert.equal(check(s, 'x/c', 'x/b', 'TCP/80').allowed, false);
    assert.equal(check(s, '10.200.0.1', 'x/b', 'TCP/80').allowed, false);
    assert.equal(check(s, '192.0.2.9', 'x/b', 'TCP/80').allowed, true);
  });

  it('a global notSelector-only rule matches addresses outside the cluster; a namespaced one does not', () => {
    const s = snapshotWith(gnp('g', `
  selector: projectcalico.org/namespace == 'y'
  ingress:
    - action: Allow
      source: {notSelector: pod == 'b'}
`) + cnp('x', 'n', `
  ingress:
    - action: Allow
      source: {notSelector: pod == 'b'}`));
    assert.equal(check(s, '192.0.2.1', 'y/a', 'TCP/80').allowed, true);
    assert.equal(check(s, '192.0.2.1', 'x/a', 'TCP/80').allowed, false);
  });

  it('ipVersion restricts a rule to one address family (dual-stack pods)', () => {
    const set = buildResourceSet(parseManifestText(`
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: app, labels: {role: web}}
status: {podIPs: [{ip: 10.1.0.5}, {ip: 'fd00:10:1::5'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: app}
status: {podIPs: [{ip: 10.1.0.6}, {ip: 'fd00:10:1::6'}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: v6-only, namespace: app}
spec:
  selector: role == 'web'
  ingress:
    - action: Allow
      ipVersion: 6
    - action: Allow
      source: {nets: ['fd00:99::/32']}
`, 'dual.yaml'));
    const s = compile(set);
    const q = (src: string, dst: string) => evaluate(s, { src, dst, protocol: 6, srcPort: 40000, dstPort: 80 });
    assert.equal(q('fd00:10:1::6', 'fd00:10:1::5').allowed, true);
    assert.equal(q('fd00:10:1::6', 'fd00:10:1::5').egress.endpoint, 'app/client');
    assert.equal(q('10.1.0.6', '10.1.0.5').allowed, false);
    // Non-canonical IPv6 text finds the same endpoint.
    assert.equal(q('fd00:10:1:0:0::6', 'FD00:10:1::5').ingress.endpoint, 'app/web');
    assert.equal(q('10.9.9.9', '10.1.0.5').ingress.reason, 'default-deny');
    assert.equal(q('fd00:99:1::1', 'fd00:10:1::5').allowed, true);
  });
});
