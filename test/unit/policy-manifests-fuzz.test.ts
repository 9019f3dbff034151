// Fuzzing the manifest loader: arbitrary values, and valid manifests with random parts
// replaced, either load or are rejected with a ManifestError — never another exception.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compile } from '../../src/policy/compiler.js';
import { ManifestError } from '../../src/policy/errors.js';
import { evaluate } from '../../src/policy/evaluator.js';
import { resourcesFromObjects } from '../../src/policy/manifests.js';

const VALID: unknown[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { ns: 'x' } } },
  {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'x', labels: { pod: 'a' } },
    spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }] }, status: { podIP: '10.0.0.1' },
  },
  {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'k', namespace: 'x' },
    spec: {
      podSelector: { matchLabels: { pod: 'a' }, matchExpressions: [{ key: 'pod', operator: 'In', values: ['a'] }] },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: {} }, { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ port: 'http' }, { protocol: 'UDP', port: 53, endPort: 60 }] }],
      egress: [{ to: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
    },
  },
  {
    apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'g' },
    spec: {
      order: 5, selector: "pod == 'a'", namespaceSelector: 'all()', types: ['Ingress'],
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { nets: ['10.0.0.0/8'], notSelector: 'has(x)' }, destination: { ports: [80, '90:99', 'http'], notPorts: [85] } },
        { action: 'Deny', protocol: 'ICMP', icmp: { type: 8, code: 0 } }],
    },
  },
];

/** Replaces the value at a random path of `obj` with `value`. */
function mutate(obj: unknown, pick: number[], value: unknown): unknown {
  if (pick.length === 0 || obj === null || typeof obj !== 'object') return value;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(obj) ? [...obj] : { ...(obj as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return value;
  const k = keys[pick[0] % keys.length];
  (copy as Record<string, unknown>)[k] = mutate((copy as Record<string, unknown>)[k], pick.slice(1), value);
  return copy;
}

function loadsOrManifestError(objs: unknown[]): void {
  try {
    const set = resourcesFromObjects(objs, 'fuzz');
    // Whatever loads also compiles and evaluates.
    const s = compile(set);
    evaluate(s, { src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, srcPort: 1, dstPort: 80 });
  } catch (e) {
    assert.ok(e instanceof ManifestError, `unexpected ${e instanceof Error ? e.stack : String(e)} for ${JSON.stringify(objs).slice(0, 500)}`);
    assert.ok(e.issues.length > 0);
    for (const i of e.issues) assert.equal(i.source, 'fuzz');
  }
}

describe('manifest loader fuzzing', () => {
  it('the unmutated manifests load', () => {
    const set = resourcesFromObjects(VALID, 'fuzz');
    assert.equal(set.policies.length, 2);
  });

  it('arbitrary values', () => {
    fc.assert(fc.property(fc.array(fc.anything({ maxDepth: 3 }), { maxLength: 4 }), loadsOrManifestError), { numRuns: 1000 });
  });

  it('valid manifests with a random part replaced', () => {
    const replacement = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom('', 'all()', '&&', '10.0.0.0/33', '1:2', 'fd00::/64', 'Ingress', 'TCP', -1, 65536, 1.5, null, [], {}),
    );
    const path = fc.array(fc.nat(), { minLength: 1, maxLength: 8 });
    fc.assert(fc.property(fc.nat(VALID.length - 1), path, replacement, (which, p, value) => {
      const objs = [...VALID];
      objs[which] = mutate(VALID[which], p, value);
      loadsOrManifestError(objs);
    }), { numRuns: 3000 });
  });
});
