// Kubernetes LabelSelector (matchLabels / matchExpressions) -> Calico selector AST.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FieldError } from '../../src/policy/errors.js';
import { fromLabelSelector, type LabelSelectorSpec } from '../../src/policy/label-selector.js';
import { labelsOf } from '../../src/policy/selector.js';

describe('Kubernetes label selectors', () => {
  const cases: { spec: LabelSelectorSpec; text: string; matches: Record<string, string>[]; nonMatches: Record<string, string>[] }[] = [
    { spec: {}, text: 'all()', matches: [{}, { a: 'b' }], nonMatches: [] },
    { spec: { matchLabels: {}, matchExpressions: [] }, text: 'all()', matches: [{}], nonMatches: [] },
    { spec: { matchLabels: { b: '2', a: '1' } }, text: '(a == "1" && b == "2")', matches: [{ a: '1', b: '2', c: '3' }], nonMatches: [{ a: '1' }, { a: '1', b: '3' }] },
    { spec: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] }, text: 'env in {"dev", "prod"}', matches: [{ env: 'dev' }], nonMatches: [{}, { env: 'qa' }] },
    { spec: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, text: 'env not in {"prod"}', matches: [{}, { env: 'dev' }], nonMatches: [{ env: 'prod' }] },
    { spec: { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, text: 'has(env)', matches: [{ env: '' }], nonMatches: [{}] },
    { spec: { matchExpressions: [{ key: 'env', operator: 'DoesNotExist', values: [] }] }, text: '!has(env)', matches: [{}], nonMatches: [{ env: 'x' }] },
    {
      spec: { matchLabels: { 'app.kubernetes.io/name': 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] },
      text: '(app.kubernetes.io/name == "web" && tier not in {"db"})',
      matches: [{ 'app.kubernetes.io/name': 'web' }, { 'app.kubernetes.io/name': 'web', tier: 'fe' }],
      nonMatches: [{ 'app.kubernetes.io/name': 'web', tier: 'db' }, { tier: 'fe' }],
    },
  ];
  for (const c of cases) {
    it(c.text, () => {
      const s = fromLabelSelector(c.spec, 'spec.podSelector');
      assert.equal(s.toString(), c.text);
      for (const l of c.matches) assert.equal(s.matches(labelsOf(l)), true, JSON.stringify(l));
      for (const l of c.nonMatches) assert.equal(s.matches(labelsOf(l)), false, JSON.stringify(l));
    });
  }

  const errors: [LabelSelectorSpec, string, string][] = [
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, 'spec.podSelector.matchExpressions[0].values', 'must be non-empty when operator is In'],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' }] }, 'spec.podSelector.matchExpressions[0].values', 'must be non-empty when operator is NotIn'],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, 'spec.podSelector.matchExpressions[0].values', 'must be empty when operator is Exists'],
    [{ matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] }, 'spec.podSelector.matchExpressions[0].operator', 'expected one of In, NotIn, Exists, DoesNotExist, got "in"'],
    [{ matchExpressions: [{ key: 'a b', operator: 'Exists' }] }, 'spec.podSelector.matchExpressions[0].key', `invalid label key "a b": name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`],
    [{ matchLabels: { 'Bad_Prefix/x': 'y' } }, 'spec.podSelector.matchLabels["Bad_Prefix/x"]', 'invalid label key "Bad_Prefix/x": prefix must be a DNS subdomain'],
    [{ matchLabels: { a: 'it\'s "quoted"' } }, 'spec.podSelector.matchLabels.a', `invalid label value "it's \\"quoted\\"": must be at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', '-bad'] }] }, 'spec.podSelector.matchExpressions[0].values[1]', `invalid label value "-bad": must be at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`],
  ];
  for (const [spec, path, message] of errors) {
    it(`rejects ${JSON.stringify(spec)}`, () => {
      assert.throws(() => fromLabelSelector(spec, 'spec.podSelector'), (e: unknown) => {
        assert.ok(e instanceof FieldError);
        assert.equal(e.path, path);
        assert.equal(e.message, message);
        return true;
      });
    });
  }
});
