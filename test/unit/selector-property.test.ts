// Property tests (fast-check): random selector ASTs print canonically and parse back to
// selectors that evaluate identically; arbitrary text either parses or throws a
// SelectorSyntaxError with a column inside the text; Kubernetes label selectors agree
// with a direct implementation of their semantics; the evaluator's IP parser agrees
// with ipaddr.js.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { formatWords, parseIPInto, canonicalIP } from '../../src/policy/ip.js';
import { fromLabelSelector, type LabelSelectorRequirement } from '../../src/policy/label-selector.js';
import {
  AllNode, ContainsNode, EndsWithNode, EqNode, HasNode, InNode, NeNode, NotInNode, NotNode, StartsWithNode, and, or,
  type SelectorNode,
} from '../../src/policy/selector/ast.js';
import { Selector, SelectorSyntaxError, labelsOf, parseSelector } from '../../src/policy/selector.js';

const KEYS = ['a', 'b', 'app.kubernetes.io/name', 'in', 'all', 'has', 'x-y_z', 'projectcalico.org/namespace'];
const VALUES = ['', 'v', 'w', 'prod-1', "it's", 'say "hi"', 'a b', 'v1.2'];

const key = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALUES);

const node: fc.Arbitrary<SelectorNode> = fc.letrec<{ node: SelectorNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(new AllNode()),
    key.map((k) => new HasNode(k)),
    fc.tuple(key, value).map(([k, v]) => new EqNode(k, v)),
    fc.tuple(key, value).map(([k, v]) => new NeNode(k, v)),
    fc.tuple(key, fc.array(value, { maxLength: 3 })).map(([k, vs]) => new InNode(k, vs)),
    fc.tuple(key, fc.array(value, { maxLength: 3 })).map(([k, vs]) => new NotInNode(k, vs)),
    fc.tuple(key, value).map(([k, v]) => new ContainsNode(k, v)),
    fc.tuple(key, value).map(([k, v]) => new StartsWithNode(k, v)),
    fc.tuple(key, value).map(([k, v]) => new EndsWithNode(k, v)),
    tie('node').map((n) => new NotNode(n)),
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((ns) => and(ns)),
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((ns) => or(ns)),
  ),
})).node;

const labelSet = fc.dictionary(key, value, { maxKeys: 5 });

describe('selector properties', () => {
  it('toString -> parse evaluates the same on random label sets, and is a fixed point', () => {
    fc.assert(fc.property(node, fc.array(labelSet, { minLength: 1, maxLength: 8 }), (n, sets) => {
      const original = new Selector(n);
      const text = original.toString();
      const reparsed = parseSelector(text);
      assert.equal(reparsed.toString(), parseSelector(reparsed.toString()).toString());
      for (const l of sets) {
        assert.equal(reparsed.matches(labelsOf(l)), original.matches(labelsOf(l)), `${text} on ${JSON.stringify(l)}`);
      }
    }), { numRuns: 2000 });
  });

  const alphabet = fc.constantFrom(
    'a', 'b', '.', '/', '-', '_', '1', ' ', '\t', '(', ')', '{', '}', ',', '"', "'", '=', '!', '&', '|',
    'has(', 'all(', ' in ', ' not in ', ' notin ', ' contains ', ' starts with ', ' ends with ', '==', '!=', '&&', '||', '#', 'é', '\n',
  );
  const text = fc.array(alphabet, { maxLength: 24 }).map((parts) => parts.join(''));

  it('arbitrary text parses or throws SelectorSyntaxError with a column inside it', () => {
    fc.assert(fc.property(fc.oneof(text, fc.string({ maxLength: 30 })), (t) => {
      try {
        const s = parseSelector(t);
        // Whatever parses has a canonical form that parses too.
        parseSelector(s.toString());
      } catch (e) {
        assert.ok(e instanceof SelectorSyntaxError, `threw ${String(e)} for ${JSON.stringify(t)}`);
        assert.ok(e.column >= 1 && e.column <= t.length + 1, `column ${e.column} outside ${JSON.stringify(t)}`);
      }
    }), { numRuns: 5000 });
  });

  it('token soup parses or fails with SelectorSyntaxError', () => {
    const tok = fc.constantFrom('a', 'b', '"v"', "'w'", '==', '!=', 'in', 'not in', '{', '}', ',', '(', ')', '!', '&&', '||', 'has(a)', 'all()');
    fc.assert(fc.property(fc.array(tok, { maxLength: 12 }), (toks) => {
      const t = toks.join(' ');
      try {
        parseSelector(t);
      } catch (e) {
        assert.ok(e instanceof SelectorSyntaxError);
        assert.ok(e.column >= 1 && e.column <= t.length + 1);
      }
    }), { numRuns: 3000 });
  });
});

describe('Kubernetes label selector properties', () => {
  const k8sKey = fc.constantFrom('a', 'b', 'app.kubernetes.io/name', 'tier');
  const k8sValue = fc.constantFrom('x', 'y', 'z', '');
  const requirement: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
    fc.record({ key: k8sKey, operator: fc.constantFrom('In', 'NotIn'), values: fc.array(k8sValue, { minLength: 1, maxLength: 3 }) }),
    fc.record({ key: k8sKey, operator: fc.constantFrom('Exists', 'DoesNotExist') }),
  );
  const spec = fc.record({
    matchLabels: fc.option(fc.dictionary(k8sKey, k8sValue, { maxKeys: 2 }), { nil: undefined }),
    matchExpressions: fc.option(fc.array(requirement, { maxLength: 3 }), { nil: undefined }),
  }, { requiredKeys: [] });

  /** The Kubernetes semantics, written directly (labels.Selector.Matches). */
  function k8sMatches(s: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }, l: Record<string, string>): boolean {
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (!Object.hasOwn(l, k) || l[k] !== v) return false;
    for (const r of s.matchExpressions ?? []) {
      const has = Object.hasOwn(l, r.key);
      const values = r.values ?? [];
      if (r.operator === 'In' && !(has && values.includes(l[r.key]))) return false;
      if (r.operator === 'NotIn' && has && values.includes(l[r.key])) return false;
      if (r.operator === 'Exists' && !has) return false;
      if (r.operator === 'DoesNotExist' && has) return false;
    }
    return true;
  }

  it('translation agrees with Kubernetes semantics and round-trips through the parser', () => {
    fc.assert(fc.property(spec, fc.array(fc.dictionary(k8sKey, k8sValue, { maxKeys: 4 }), { minLength: 1, maxLength: 6 }), (s, sets) => {
      const sel = fromLabelSelector(s, 'spec.podSelector');
      const reparsed = parseSelector(sel.toString());
      for (const l of sets) {
        assert.equal(sel.matches(labelsOf(l)), k8sMatches(s, l), `${sel} on ${JSON.stringify(l)}`);
        assert.equal(reparsed.matches(labelsOf(l)), k8sMatches(s, l));
      }
    }), { numRuns: 2000 });
  });
});

describe('evaluator IP parser', () => {
  it('agrees with ipaddr.js on IPv4', () => {
    const w = new Uint32Array(4);
    fc.assert(fc.property(fc.ipV4(), (ip) => {
      assert.equal(parseIPInto(ip, w), 4);
      const bytes = ipaddr.IPv4.parse(ip).toByteArray();
      assert.equal(w[0], ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0);
      assert.equal(formatWords(4, w), ip);
    }), { numRuns: 2000 });
  });

  it('agrees with ipaddr.js on IPv6 (all spellings) and prints RFC 5952', () => {
    const w = new Uint32Array(4);
    fc.assert(fc.property(fc.ipV6(), (ip) => {
      assert.equal(parseIPInto(ip, w), 6, ip);
      // ipaddr.js reads the IPv4-compatible "::a.b.c.d" as IPv4-mapped; RFC 4291 2.5.5.1 says zeros.
      const compat = /^::(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
      const parts = compat ? [0, 0, 0, 0, 0, 0, ...ipaddr.IPv6.parse(`::ffff:${compat[1]}`).parts.slice(6)] : ipaddr.IPv6.parse(ip).parts;
      for (let i = 0; i < 4; i++) assert.equal(w[i], (parts[2 * i] * 65536 + parts[2 * i + 1]) >>> 0, ip);
      assert.equal(formatWords(6, w), canonicalIP(ip));
      if (!compat) assert.equal(canonicalIP(ip), ipaddr.IPv6.parse(ip).toRFC5952String());
    }), { numRuns: 2000 });
  });

  it('rejects what ipaddr.js rejects', () => {
    const w = new Uint32Array(4);
    const junk = fc.array(fc.constantFrom('1', 'f', ':', '::', '.', '255', '256', 'g', '0', '%', ' '), { maxLength: 12 }).map((p) => p.join(''));
    fc.assert(fc.property(junk, (s) => {
      const fam = parseIPInto(s, w);
      const valid = ipaddr.IPv4.isValidFourPartDecimal(s) || (s.includes(':') && !s.includes('%') && ipaddr.IPv6.isValid(s));
      assert.equal(fam !== 0, valid, JSON.stringify(s));
    }), { numRuns: 5000 });
  });
});
