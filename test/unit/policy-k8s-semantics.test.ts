// Kubernetes NetworkPolicy semantics, case by case, on the upstream e2e model
// (test/e2e/network/netpol): namespaces x, y, z; pods a, b, c; ports 80/81 over
// TCP, UDP (and SCTP). Each case lists its full truth tables (rows: from, columns: to,
// '.' allowed, 'X' blocked); the diagonal is loopback and always allowed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_ALLOWED, DENY_INGRESS_X, IP, assertTables, check, k8sPolicy as np, snapshotWith } from '../fixtures/policy/harness.js';

interface Case {
  name: string;
  yaml: string;
  tables: Record<string, string>;
}

const ONLY_X_TO_X = `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .`;

const cases: Case[] = [
  {
    name: 'no policies: everything is allowed',
    yaml: '',
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81,SCTP/80': ALL_ALLOWED },
  },
  {
    name: 'deny all ingress in x (podSelector {}, policyTypes [Ingress], no ingress field)',
    yaml: np('x', 'deny-all', `
  podSelector: {}
  policyTypes: [Ingress]`),
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81,SCTP/81': DENY_INGRESS_X },
  },
  {
    name: 'deny all ingress with an explicit empty list (ingress: [])',
    yaml: np('x', 'deny-all', `
  podSelector: {}
  ingress: []`),
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'ingress: [{}] allows everything, even next to a deny-all (union)',
    yaml: np('x', 'deny-all', `
  podSelector: {}
  policyTypes: [Ingress]`) + np('x', 'allow-all', `
  podSelector: {}
  ingress: [{}]`),
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81': ALL_ALLOWED },
  },
  {
    name: 'allow ingress from the same namespace (from: [{podSelector: {}}])',
    yaml: np('x', 'allow-same-ns', `
  podSelector: {}
  ingress:
    - from: [{podSelector: {}}]`),
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81': ONLY_X_TO_X },
  },
  {
    name: 'namespaceSelector: x/a only from namespace y',
    yaml: np('x', 'a-from-y', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'podSelector AND namespaceSelector in one peer: x/a only from y/b',
    yaml: np('x', 'a-from-yb', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {ns: y}}
          podSelector: {matchLabels: {pod: b}}`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   X   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   X   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'namespaceSelector OR podSelector (two peers): x/a from all of y and from x/b',
    yaml: np('x', 'a-from-y-or-b', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {ns: y}}
        - podSelector: {matchLabels: {pod: b}}`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'namespaceSelector {} with podSelector: x/a from pod c of every namespace',
    yaml: np('x', 'a-from-all-c', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector: {}
          podSelector: {matchLabels: {pod: c}}`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   X   .   .   .   .   .   .   .   .
y/b   X   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'matchExpressions: pods a,b of x only from namespaces NotIn [y]',
    yaml: np('x', 'ab-not-from-y', `
  podSelector:
    matchExpressions: [{key: pod, operator: In, values: [a, b]}]
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions: [{key: ns, operator: NotIn, values: [y]}]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   X   X   .   .   .   .   .   .   .
y/b   X   X   .   .   .   .   .   .   .
y/c   X   X   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'matchExpressions Exists / DoesNotExist on the kubernetes.io/metadata.name namespace label',
    yaml: np('x', 'c-from-named-ns', `
  podSelector:
    matchExpressions: [{key: pod, operator: DoesNotExist}, {key: pod, operator: Exists}]
`) + np('y', 'all-from-z', `
  podSelector: {}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}`),
    // The x policy's selector is contradictory (selects nothing): x stays open.
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   X   X   X   .   .   .
x/b   .   .   .   X   X   X   .   .   .
x/c   .   .   .   X   X   X   .   .   .
y/a   .   .   .   .   X   X   .   .   .
y/b   .   .   .   X   .   X   .   .   .
y/c   .   .   .   X   X   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'ipBlock with except: x/a from 10.0.0.0/16 except y (10.0.2.0/24) — pod IPs match ipBlocks',
    yaml: np('x', 'a-from-block', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.0/24]}`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   X   .   .   .   .   .   .   .   .
y/b   X   .   .   .   .   .   .   .   .
y/c   X   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'an IP in except can still be allowed by another peer',
    yaml: np('x', 'a-from-block', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - ipBlock: {cidr: 10.0.2.0/24, except: [10.0.2.11/32]}
        - podSelector: {}
          namespaceSelector: {matchLabels: {ns: y}}`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'egress ipBlock with except: x/a to 10.0.0.0/16 except z (10.0.3.0/24)',
    yaml: np('x', 'a-to-block', `
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.3.0/24]}`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   X   X   X
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
    name: 'ports: only TCP 80 into x (protocol defaults to TCP; from missing = any source)',
    yaml: np('x', 'tcp-80', `
  podSelector: {}
  ingress:
    - ports: [{port: 80}]`),
    tables: { 'TCP/80': ALL_ALLOWED, 'TCP/81,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'from: [] is the same as no from (any source)',
    yaml: np('x', 'tcp-81', `
  podSelector: {}
  ingress:
    - from: []
      ports: [{protocol: TCP, port: 81}]`),
    tables: { 'TCP/81': ALL_ALLOWED, 'TCP/80,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'ports: [{}] means every TCP port, not every protocol',
    yaml: np('x', 'all-tcp', `
  podSelector: {}
  ingress:
    - ports: [{}]`),
    tables: { 'TCP/80,TCP/81': ALL_ALLOWED, 'UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'endPort: TCP 81-90 into x',
    yaml: np('x', 'range', `
  podSelector: {}
  ingress:
    - ports: [{protocol: TCP, port: 81, endPort: 90}]`),
    tables: { 'TCP/81,TCP/90': ALL_ALLOWED, 'TCP/80,TCP/91,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'several ports of different protocols in one rule: TCP 80 or UDP 81',
    yaml: np('x', 'mixed', `
  podSelector: {}
  ingress:
    - ports: [{protocol: UDP, port: 81}, {port: 80}]`),
    tables: { 'TCP/80,UDP/81': ALL_ALLOWED, 'TCP/81,UDP/80': DENY_INGRESS_X },
  },
  {
    name: 'named port on ingress resolves on the destination pod (serve-81-udp = UDP/81)',
    yaml: np('x', 'named', `
  podSelector: {}
  ingress:
    - ports: [{protocol: UDP, port: serve-81-udp}]`),
    tables: { 'UDP/81': ALL_ALLOWED, 'TCP/80,TCP/81,UDP/80': DENY_INGRESS_X },
  },
  {
    name: 'named port whose protocol differs from the rule protocol matches nothing',
    yaml: np('x', 'named-mismatch', `
  podSelector: {}
  ingress:
    - ports: [{port: serve-81-udp}]`),
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'named port on egress resolves on the destination (peer) pod: x/a to y on serve-80-tcp only',
    yaml: np('x', 'a-to-y-web', `
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {ns: y}}}]
      ports: [{port: serve-80-tcp}]`),
    tables: {
      'TCP/80': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   .   .   .   X   X   X
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
      'TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   X   X   X   X   X   X
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
    name: 'egress deny-all in x plus allow DNS (UDP 53) anywhere',
    yaml: np('x', 'dns-only', `
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports: [{protocol: UDP, port: 53}]`),
    tables: {
      'UDP/53': ALL_ALLOWED,
      'TCP/53,TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   X   X   X   X   X   X
x/b   X   .   X   X   X   X   X   X   X
x/c   X   X   .   X   X   X   X   X   X
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'policyTypes [Egress] only: egress to the same namespace, ingress stays open',
    yaml: np('x', 'egress-same-ns', `
  podSelector: {}
  policyTypes: [Egress]
  ingress: []
  egress:
    - to: [{podSelector: {}}]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   X   X   X   X   X   X
x/b   .   .   .   X   X   X   X   X   X
x/c   .   .   .   X   X   X   X   X   X
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'policyTypes defaulted with egress rules: [Ingress, Egress] (ingress missing = deny)',
    yaml: np('x', 'defaulted', `
  podSelector: {}
  egress:
    - to: [{podSelector: {}}]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   X   X   X   X   X   X
x/b   X   .   X   X   X   X   X   X   X
x/c   X   X   .   X   X   X   X   X   X
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .`,
    },
  },
  {
    name: 'policyTypes defaulted with egress: [] is [Ingress] only (egress stays open)',
    yaml: np('x', 'defaulted-empty-egress', `
  podSelector: {}
  egress: []`),
    tables: { 'TCP/80,TCP/81,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'multiple policies are a union: x/a from y (one policy) and from z/c (another)',
    yaml: np('x', 'a-from-y', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]`) + np('x', 'a-from-zc', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: c}}}]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   .   .   .   .   .   .
x/b   X   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'rules within one policy are a union too: UDP 80 from y, TCP 81 from anywhere',
    yaml: np('x', 'two-rules', `
  podSelector: {matchLabels: {pod: b}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
      ports: [{protocol: UDP, port: 80}]
    - ports: [{port: 81}]`),
    tables: {
      'TCP/81': ALL_ALLOWED,
      'UDP/80': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   X   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   X   .   .   .   .   .   .   .
z/b   .   X   .   .   .   .   .   .   .
z/c   .   X   .   .   .   .   .   .   .`,
      'TCP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   X   .   .   .   .   .   .   .
y/a   .   X   .   .   .   .   .   .   .
y/b   .   X   .   .   .   .   .   .   .
y/c   .   X   .   .   .   .   .   .   .
z/a   .   X   .   .   .   .   .   .   .
z/b   .   X   .   .   .   .   .   .   .
z/c   .   X   .   .   .   .   .   .   .`,
    },
  },
  {
    name: 'a flow needs the source egress AND the destination ingress',
    yaml: np('x', 'a-to-y', `
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {ns: y}}}]`) + np('y', 'b-from-xc', `
  podSelector: {matchLabels: {pod: b}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: c}}}]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   X   X   .   X   .   X   X   X
x/b   .   .   .   .   X   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   X   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   X   .   .   .   .
z/a   .   .   .   .   X   .   .   .   .
z/b   .   .   .   .   X   .   .   .   .
z/c   .   .   .   .   X   .   .   .   .`,
    },
  },
  {
    name: 'SCTP: only SCTP 80 into x',
    yaml: np('x', 'sctp-80', `
  podSelector: {}
  ingress:
    - ports: [{protocol: SCTP, port: 80}]`),
    tables: { 'SCTP/80': ALL_ALLOWED, 'SCTP/81,TCP/80,TCP/81,UDP/80,UDP/81': DENY_INGRESS_X },
  },
  {
    name: 'a policy in another namespace does not select pods of x',
    yaml: np('y', 'deny-all', `
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]`),
    tables: {
      'TCP/80,TCP/81,UDP/80,UDP/81': `
     x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a   .   .   .   X   .   .   .   .   .
x/b   .   .   .   X   .   .   .   .   .
x/c   .   .   .   X   .   .   .   .   .
y/a   X   X   X   .   X   X   X   X   X
y/b   .   .   .   X   .   .   .   .   .
y/c   .   .   .   X   .   .   .   .   .
z/a   .   .   .   X   .   .   .   .   .
z/b   .   .   .   X   .   .   .   .   .
z/c   .   .   .   X   .   .   .   .   .`,
    },
  },
];

describe('Kubernetes NetworkPolicy truth tables (e2e model)', () => {
  for (const c of cases) {
    it(c.name, () => {
      assertTables(snapshotWith(c.yaml), c.tables, c.name);
    });
  }
});

describe('Kubernetes NetworkPolicy verdict details', () => {
  it('reports the deciding policy and the rule index in the manifest', () => {
    const s = snapshotWith(np('x', 'web', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: z}}}]
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}]
      ports: [{port: 80}, {protocol: UDP, port: 81}]`));
    const v = check(s, 'y/c', 'x/a', 'UDP/81');
    assert.deepEqual(v.ingress, {
      allowed: true, endpoint: 'x/a', policy: 'KubernetesNetworkPolicy/x/web', rule: 1, action: 'Allow', reason: 'rule',
    });
    assert.deepEqual(v.egress, { allowed: true, endpoint: 'y/c', reason: 'no-policy' });
    assert.equal(v.allowed, true);
    const denied = check(s, 'y/c', 'x/a', 'UDP/80');
    assert.deepEqual(denied.ingress, { allowed: false, endpoint: 'x/a', reason: 'default-deny' });
    assert.equal(denied.allowed, false);
  });

  it('checks only the known side for traffic from or to addresses outside the pods', () => {
    const s = snapshotWith(np('x', 'a-from-block', `
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}}]`));
    const inBlock = check(s, '192.168.7.7', 'x/a', 'TCP/80');
    assert.equal(inBlock.allowed, true);
    assert.deepEqual(inBlock.egress, { allowed: true, reason: 'not-an-endpoint' });
    assert.equal(check(s, '192.168.1.7', 'x/a', 'TCP/80').allowed, false);
    assert.equal(check(s, '172.16.0.1', 'x/a', 'TCP/80').allowed, false);
    // Out of the cluster: only x/a's egress is checked (x/a has no egress policy).
    const out = check(s, 'x/a', '8.8.8.8', 'UDP/53');
    assert.deepEqual(out.ingress, { allowed: true, reason: 'not-an-endpoint' });
    assert.equal(out.allowed, true);
  });

  it('egress allow DNS reaches external resolvers on UDP 53 but nothing else', () => {
    const s = snapshotWith(np('x', 'dns-only', `
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]`));
    assert.equal(check(s, 'x/a', '10.96.0.10', 'UDP/53').allowed, true);
    assert.equal(check(s, 'x/a', '10.96.0.10', 'TCP/53').allowed, true);
    assert.equal(check(s, 'x/a', '10.96.0.10', 'TCP/443').allowed, false);
    assert.equal(check(s, 'x/a', '10.96.0.10', 'ICMP').allowed, false);
  });

  it('named ports never match addresses that are not pods', () => {
    const s = snapshotWith(np('x', 'a-to-named', `
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - ports: [{port: serve-80-tcp}]`));
    assert.equal(check(s, 'x/a', 'y/b', 'TCP/80').allowed, true);
    assert.equal(check(s, 'x/a', '10.9.9.9', 'TCP/80').allowed, false);
  });

  it('rules without ports allow every protocol, ICMP included; with ports, ICMP is not matched', () => {
    const s = snapshotWith(np('x', 'from-y', `
  podSelector: {}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]`) + np('z', 'tcp-only', `
  podSelector: {}
  ingress:
    - ports: [{port: 80}]`));
    assert.equal(check(s, 'y/a', 'x/a', 'ICMP', { icmpType: 8, icmpCode: 0 }).allowed, true);
    assert.equal(check(s, 'y/a', 'z/a', 'ICMP', { icmpType: 8, icmpCode: 0 }).allowed, false);
  });

  it('the e2e pod addresses are the ones in the fixture', () => {
    assert.equal(IP['x/a'], '10.0.1.10');
    assert.equal(IP['z/c'], '10.0.3.12');
  });
});
