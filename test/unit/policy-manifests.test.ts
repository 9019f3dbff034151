// Manifest loading and validation: exact messages naming file, document and field
// path; whole-set rejection; namespaces' automatic labels; Lists; directories.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestError } from '../../src/policy/errors.js';
import { evaluate } from '../../src/policy/evaluator.js';
import {
  buildResourceSet, loadManifests, parseManifestText, readManifestFiles, resourcesFromObjects,
} from '../../src/policy/manifests.js';
import { podIPs, withLabIPs } from '../../src/policy/model.js';
import { PolicyState } from '../../src/policy/state.js';
import { E2E_MODEL, FIXTURES } from '../fixtures/policy/harness.js';

/** The error lines (file doc N: path: message) of loading `yaml` as `source`. */
function errorsOf(yaml: string, source = 'policies.yaml'): string[] {
  try {
    buildResourceSet(parseManifestText(yaml, source));
  } catch (e) {
    assert.ok(e instanceof ManifestError, `expected ManifestError, got ${String(e)}`);
    assert.equal(e.message, e.issues.map((i) => `${i.source} doc ${i.doc}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'));
    return e.message.split('\n');
  }
  assert.fail('expected the manifests to be rejected');
}

const K8S = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n';
const CALICO = 'apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n';
const GNP = 'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\n';

const cases: [string, string, string[]][] = [
  ['a port of the wrong type (doc 2)', `${K8S}spec: {podSelector: {}}
---
${K8S.replace('name: p', 'name: q')}spec:
  podSelector: {}
  ingress:
    - ports: [{port: 80}, {port: true}]`, ['policies.yaml doc 2: spec.ingress[0].ports[1].port: expected number or string']],
  ['a misspelt field', `${K8S}spec:
  podSelector: {}
  ingress: [{fromm: []}]`, ['policies.yaml doc 1: spec.ingress[0].fromm: unknown field']],
  ['a missing name and a wrong spec type', `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x}
spec: []`, ['policies.yaml doc 1: metadata.name: required', 'policies.yaml doc 1: spec: expected object']],
  ['a missing spec', `${K8S}`, ['policies.yaml doc 1: spec: required']],
  ['policyTypes are case sensitive', `${K8S}spec:
  podSelector: {}
  policyTypes: [ingress]`, ['policies.yaml doc 1: spec.policyTypes[0]: expected one of Ingress, Egress, got "ingress"']],
  ['Kubernetes protocols are case sensitive', `${K8S}spec:
  podSelector: {}
  ingress: [{ports: [{protocol: tcp, port: 80}]}]`, ['policies.yaml doc 1: spec.ingress[0].ports[0].protocol: expected one of TCP, UDP, SCTP, got "tcp"']],
  ['a bad CIDR prefix', `${K8S}spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]`, ['policies.yaml doc 1: spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR "10.0.0.0/33": prefix must be 0-32']],
  ['an ipBlock cidr without prefix', `${K8S}spec:
  podSelector: {}
  egress: [{to: [{ipBlock: {cidr: 10.0.0.1}}]}]`, ['policies.yaml doc 1: spec.egress[0].to[0].ipBlock.cidr: invalid CIDR "10.0.0.1": missing /prefix']],
  ['an except outside the cidr', `${K8S}spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24, 10.1.0.0/24]}}]}]`, ['policies.yaml doc 1: spec.ingress[0].from[0].ipBlock.except[1]: 10.1.0.0/24 must be a strict subset of cidr 10.0.0.0/16']],
  ['endPort below port', `${K8S}spec:
  podSelector: {}
  ingress: [{ports: [{port: 90, endPort: 80}]}]`, ['policies.yaml doc 1: spec.ingress[0].ports[0].endPort: must be greater than or equal to port (90), got 80']],
  ['endPort with a named port', `${K8S}spec:
  podSelector: {}
  ingress: [{ports: [{port: http, endPort: 80}]}]`, ['policies.yaml doc 1: spec.ingress[0].ports[0].endPort: may not be set when port is a named port']],
  ['a numeric string port is a (bad) named port, as in Kubernetes', `${K8S}spec:
  podSelector: {}
  ingress: [{ports: [{port: "80"}]}]`, [`policies.yaml doc 1: spec.ingress[0].ports[0].port: invalid port name "80": must be 1-15 lowercase alphanumerics or '-', contain a letter, and not start, end or repeat '-'`]],
  ['a port out of range', `${K8S}spec:
  podSelector: {}
  ingress: [{ports: [{port: 70000}]}]`, ['policies.yaml doc 1: spec.ingress[0].ports[0].port: port must be an integer from 1 to 65535, got 70000']],
  ['ipBlock combined with podSelector', `${K8S}spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]`, ['policies.yaml doc 1: spec.ingress[0].from[0]: ipBlock may not be combined with podSelector or namespaceSelector']],
  ['an empty peer', `${K8S}spec:
  podSelector: {}
  ingress: [{from: [{}]}]`, ['policies.yaml doc 1: spec.ingress[0].from[0]: must specify podSelector, namespaceSelector or ipBlock']],
  ['a bad matchExpressions operator inside a peer', `${K8S}spec:
  podSelector: {}
  egress: [{to: [{namespaceSelector: {matchExpressions: [{key: ns, operator: Equals, values: [y]}]}}]}]`, ['policies.yaml doc 1: spec.egress[0].to[0].namespaceSelector.matchExpressions[0].operator: expected one of In, NotIn, Exists, DoesNotExist, got "Equals"']],
  ['a Calico selector syntax error keeps its column', `${CALICO}spec:
  selector: app == 'x' && && b`, [`policies.yaml doc 1: spec.selector: unexpected token '&&' at column 15 in selector "app == 'x' && && b": expected a label, has(), all(), '!' or '('`]],
  ['a rule selector syntax error', `${CALICO}spec:
  ingress:
    - action: Allow
      source: {selector: "a in {'x'"}`, [`policies.yaml doc 1: spec.ingress[0].source.selector: unexpected end of selector at column 10 in selector "a in {'x'": expected ',' or '}'`]],
  ['Calico actions are case sensitive', `${CALICO}spec:
  ingress: [{action: allow}]`, ['policies.yaml doc 1: spec.ingress[0].action: expected one of Allow, Deny, Log, Pass, got "allow"']],
  ['a Calico rule without action', `${CALICO}spec:
  ingress: [{protocol: TCP}]`, ['policies.yaml doc 1: spec.ingress[0].action: required']],
  ['numeric ports need a protocol', `${CALICO}spec:
  ingress:
    - action: Allow
      destination: {ports: [80, http]}`, ['policies.yaml doc 1: spec.ingress[0].destination.ports: numeric ports need protocol TCP, UDP, SCTP or UDPLite']],
  ['a reversed port range', `${CALICO}spec:
  ingress:
    - action: Allow
      protocol: TCP
      destination: {notPorts: ['2000:1000']}`, ['policies.yaml doc 1: spec.ingress[0].destination.notPorts[0]: port range "2000:1000" must have start <= end']],
  ['an unknown protocol', `${CALICO}spec:
  egress:
    - action: Deny
      notProtocol: TCPX`, ['policies.yaml doc 1: spec.egress[0].notProtocol: unknown protocol "TCPX": expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or 1-255']],
  ['icmp without an ICMP protocol', `${CALICO}spec:
  ingress:
    - action: Allow
      protocol: TCP
      icmp: {type: 8}`, ['policies.yaml doc 1: spec.ingress[0].icmp: needs protocol ICMP or ICMPv6']],
  ['icmp code without type', `${CALICO}spec:
  ingress:
    - action: Allow
      protocol: ICMP
      notICMP: {code: 1}`, ['policies.yaml doc 1: spec.ingress[0].notICMP.code: may not be set without type']],
  ['ipVersion that contradicts the protocol', `${CALICO}spec:
  ingress:
    - action: Allow
      protocol: ICMPv6
      ipVersion: 4`, ['policies.yaml doc 1: spec.ingress[0].ipVersion: does not match protocol ICMPv6']],
  ['a bad CIDR in nets', `${CALICO}spec:
  ingress:
    - action: Allow
      source: {nets: [10.0.0.0/8, 'fd00::/129']}`, ['policies.yaml doc 1: spec.ingress[0].source.nets[1]: invalid CIDR "fd00::/129": prefix must be 0-128']],
  ['unsupported Calico features are rejected, not ignored', `${CALICO}spec:
  ingress:
    - action: Allow
      source: {serviceAccounts: {names: [api]}}`, ['policies.yaml doc 1: spec.ingress[0].source.serviceAccounts: serviceAccounts is not supported by sluice']],
  ['tiers other than default', `${CALICO}spec:
  tier: security`, ['policies.yaml doc 1: spec.tier: tier "security" (only "default") is not supported by sluice']],
  ['egress rules without Egress in types', `${CALICO}spec:
  types: [Ingress]
  egress: [{action: Allow}]`, ['policies.yaml doc 1: spec.egress: egress rules need "Egress" in spec.types']],
  ['namespaceSelector is for GlobalNetworkPolicy only', `${CALICO}spec:
  namespaceSelector: all()`, ['policies.yaml doc 1: spec.namespaceSelector: unknown field']],
  ['GlobalNetworkPolicy host-endpoint flags', `${GNP}spec:
  preDNAT: true`, ['policies.yaml doc 1: spec.preDNAT: preDNAT (host endpoints only) is not supported by sluice']],
  ['an unsupported kind', 'apiVersion: v1\nkind: Service\nmetadata: {name: s}', ['policies.yaml doc 1: kind: unsupported kind "Service" with apiVersion "v1" (expected v1 Namespace, Pod or List, networking.k8s.io/v1 NetworkPolicy, projectcalico.org/v3 NetworkPolicy or GlobalNetworkPolicy)']],
  ['an old apiVersion', 'apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: s}\nspec: {}', ['policies.yaml doc 1: kind: unsupported kind "NetworkPolicy" with apiVersion "networking.k8s.io/v1beta1" (expected v1 Namespace, Pod or List, networking.k8s.io/v1 NetworkPolicy, projectcalico.org/v3 NetworkPolicy or GlobalNetworkPolicy)']],
  ['missing apiVersion and kind', 'metadata: {name: s}', ['policies.yaml doc 1: apiVersion: required', 'policies.yaml doc 1: kind: required']],
  ['a document that is not an object', '- just\n- a list', ['policies.yaml doc 1: expected an object (a Kubernetes or Calico resource)']],
  ['a bad pod IP and a bad container port', `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: x}
status: {podIP: 10.0.0.300}
---
apiVersion: v1
kind: Pod
metadata: {name: q, namespace: x}
spec:
  containers:
    - ports: [{name: web, containerPort: 80, protocol: HTTP}]`, [
    'policies.yaml doc 1: status.podIP: invalid IP address "10.0.0.300"',
    'policies.yaml doc 2: spec.containers[0].ports[0].protocol: expected one of TCP, UDP, SCTP, got "HTTP"',
  ]],
  ['bad labels', `apiVersion: v1
kind: Namespace
metadata:
  name: x
  labels: {"bad key!": v}`, [`policies.yaml doc 1: metadata.labels["bad key!"]: invalid label key "bad key!": name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`]],
  ['a List item (path through items[i])', `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: {name: ok}
  - ${K8S.split('\n').join('\n    ')}spec:
      podSelector: {matchLabels: {"a b": c}}`, [`policies.yaml doc 1: items[1].spec.podSelector.matchLabels["a b"]: invalid label key "a b": name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`]],
  ['duplicates: pod, IP, policy', `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x}
status: {podIP: 10.0.0.1}
---
${K8S}spec: {podSelector: {}}
---
${K8S}spec: {podSelector: {}}
---
${CALICO}spec: {}`, [
    'policies.yaml doc 2: metadata.name: duplicate Pod x/a (first defined at policies.yaml doc 1)',
    'policies.yaml doc 3: status: pod IP 10.0.0.1 is already used by pod x/a (policies.yaml doc 1)',
    'policies.yaml doc 5: metadata.name: duplicate KubernetesNetworkPolicy/x/p (first defined at policies.yaml doc 4)',
  ]],
  ['every bad document is reported, in order', `${K8S}spec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: fine}
---
${GNP}spec: {order: high}`, [
    'policies.yaml doc 1: spec.ingress[0].ports[0].port: port must be an integer from 1 to 65535, got 0',
    'policies.yaml doc 3: spec.order: expected number',
  ]],
];

describe('manifest validation errors', () => {
  for (const [name, yaml, expected] of cases) {
    it(name, () => assert.deepEqual(errorsOf(yaml), expected));
  }

  it('YAML syntax errors name the document and the line', () => {
    const lines = errorsOf('apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\nkind: Namespace\nkind: Pod\n', 'bad.yaml');
    assert.deepEqual(lines, ['bad.yaml doc 2: YAML syntax error at line 6, column 1: Map keys must be unique']);
  });

  it('JSON syntax errors name the file', () => {
    assert.throws(() => parseManifestText('{"kind": ', 'x.json', 'json'), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.match(e.message, /^x\.json doc 1: JSON syntax error: /);
      return true;
    });
  });

  it('unreadable paths are reported with the path', () => {
    assert.throws(() => readManifestFiles([`${FIXTURES}missing.yaml`]), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.equal(e.message, `${FIXTURES}missing.yaml: cannot read (ENOENT): no such file or directory`);
      return true;
    });
  });

  it('unknown kinds can be ignored on request', () => {
    const set = buildResourceSet(parseManifestText('apiVersion: v1\nkind: Service\nmetadata: {name: s}', 'svc.yaml'), { unknownKinds: 'ignore' });
    assert.deepEqual(set, { namespaces: [], pods: [], policies: [] });
  });
});

describe('manifest loading', () => {
  it('loads the e2e model: 3 namespaces, 9 pods with IPs and named ports', () => {
    const set = loadManifests([E2E_MODEL]);
    assert.deepEqual(set.namespaces.map((n) => [n.name, n.labels]), [
      ['x', { ns: 'x', 'kubernetes.io/metadata.name': 'x' }],
      ['y', { ns: 'y', 'kubernetes.io/metadata.name': 'y' }],
      ['z', { ns: 'z', 'kubernetes.io/metadata.name': 'z' }],
    ]);
    assert.equal(set.pods.length, 9);
    const ya = set.pods.find((p) => p.namespace === 'y' && p.name === 'a')!;
    assert.deepEqual(ya.statusIPs, ['10.0.2.10']);
    assert.equal(ya.nodeName, 'node-1');
    assert.deepEqual(ya.ports.find((p) => p.name === 'serve-81-sctp'), { name: 'serve-81-sctp', port: 81, protocol: 132 });
  });

  it('loads a directory: manifest files by name, JSON Lists, not recursive; implicit namespaces', () => {
    const set = loadManifests([`${FIXTURES}demo`]);
    assert.deepEqual(set.pods.map((p) => `${p.namespace}/${p.name}`), ['shop/web', 'shop/db', 'edge/client']);
    assert.deepEqual(set.policies.map((p) => p.id), [
      'KubernetesNetworkPolicy/shop/db-from-web', 'CalicoNetworkPolicy/shop/web-from-edge', 'GlobalNetworkPolicy/log-shop',
    ]);
    const edge = set.namespaces.find((n) => n.name === 'edge')!;
    assert.deepEqual(edge, { name: 'edge', labels: { 'kubernetes.io/metadata.name': 'edge' }, implicit: true });
    assert.equal(set.namespaces.find((n) => n.name === 'shop')!.implicit, false);
    const db = set.pods.find((p) => p.name === 'db')!;
    assert.deepEqual(db.origin, { source: `${FIXTURES}demo/10-model.yaml`, doc: 4, path: '' });
    const client = set.pods.find((p) => p.name === 'client')!;
    assert.deepEqual(client.origin, { source: `${FIXTURES}demo/30-edge.json`, doc: 1, path: 'items[0]' });
  });

  it('the kubernetes.io/metadata.name label is always the namespace name', () => {
    const set = buildResourceSet(parseManifestText(`apiVersion: v1
kind: Namespace
metadata: {name: real, labels: {kubernetes.io/metadata.name: fake}}`, 'ns.yaml'));
    assert.deepEqual(set.namespaces[0].labels, { 'kubernetes.io/metadata.name': 'real' });
  });

  it('typed lists (PodList) give their items kind and apiVersion', () => {
    const set = resourcesFromObjects([{
      apiVersion: 'v1', kind: 'PodList',
      items: [{ metadata: { name: 'p', namespace: 'n' }, status: { podIPs: [{ ip: '10.0.0.1' }, { ip: 'FD00::0:1' }] } }],
    }]);
    assert.deepEqual(set.pods[0].statusIPs, ['10.0.0.1', 'fd00::1']);
    assert.equal(set.pods[0].origin?.source, 'store');
  });

  it('null fields mean absent; pods default to namespace "default"', () => {
    const set = buildResourceSet(parseManifestText(`${K8S}spec:
  podSelector:
  policyTypes:
  ingress:
    - from:
      ports:
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, ports: null}]}
`, 'n.yaml'));
    const p = set.policies[0];
    assert.equal(p.selector.toString(), 'all()');
    assert.deepEqual(p.types, { ingress: true, egress: false });
    assert.equal(p.ingress.length, 1);
    assert.deepEqual(p.ingress[0].source, {});
    assert.equal(set.pods[0].namespace, 'default');
  });

  it('a lab-assigned IP replaces the status IPs; host-network pods are not endpoints', () => {
    const set = buildResourceSet(parseManifestText(`apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x}
status: {podIP: 10.0.0.9}
---
apiVersion: v1
kind: Pod
metadata: {name: node-agent, namespace: x}
spec: {hostNetwork: true}
status: {podIP: 10.0.0.9}
`, 'lab.yaml'));
    const lab = withLabIPs(set, (p) => (p.name === 'a' ? '10.244.1.5' : undefined));
    assert.deepEqual(lab.pods.map((p) => podIPs(p)), [['10.244.1.5'], ['10.0.0.9'], ['10.0.0.9']]);
    assert.deepEqual(set.pods.map((p) => podIPs(p).length), [0, 1, 1], 'the original set is unchanged');
  });
});

describe('policy state: invalid sets change nothing', () => {
  it('keeps the previous resources, snapshot and generation on error', () => {
    const state = new PolicyState(7);
    assert.equal(state.generation, 7);
    const docs = readManifestFiles([E2E_MODEL, `${FIXTURES}e2e-policies.yaml`]);
    const first = state.replace(docs);
    assert.equal(first.generation, 8);
    assert.equal(state.resources.policies.length, 3);
    const before = { resources: state.resources, snapshot: state.snapshot };
    const flow = { src: '10.0.2.10', dst: '10.0.1.10', protocol: 6, srcPort: 40000, dstPort: 80 };
    assert.equal(evaluate(state.snapshot, flow).allowed, true);

    const bad = [...docs.slice(0, -1), ...parseManifestText(`${K8S}spec: {podSelector: {}}\n---\n${K8S}spec: {podSelector: 7}`, 'update.yaml')];
    assert.throws(() => state.replace(bad), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.equal(e.message, 'update.yaml doc 2: spec.podSelector: expected object');
      return true;
    });
    assert.equal(state.generation, 8);
    assert.equal(state.resources, before.resources);
    assert.equal(state.snapshot, before.snapshot);
    assert.equal(evaluate(state.snapshot, flow).allowed, true);

    // A valid update takes effect with the next generation.
    const denyAll = parseManifestText(`${K8S.replace('name: p', 'name: deny-x-egress').replace('namespace: x', 'namespace: y')}spec: {podSelector: {}, policyTypes: [Egress]}`, 'update.yaml');
    const next = state.replace([...docs, ...denyAll]);
    assert.equal(next.generation, 9);
    assert.equal(evaluate(state.snapshot, flow).allowed, false);
  });
});
