// Calico selector language: {sel, matches[], nonMatches[]} tables (many from
// libcalico-go's parser_test.go), bad inputs with their columns and messages, and
// canonical round-trips.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL, NONE, SelectorSyntaxError, labelsOf, normalise, parseSelector, validate } from '../../src/policy/selector.js';

type L = Record<string, string>;

const table: { sel: string; matches: L[]; nonMatches: L[] }[] = [
  { sel: '', matches: [{}, { a: 'b' }], nonMatches: [] },
  { sel: 'all()', matches: [{}, { a: 'b' }], nonMatches: [] },
  { sel: 'a == "a"', matches: [{ a: 'a' }, { a: 'a', b: 'b' }], nonMatches: [{}, { a: 'b' }, { b: 'a' }] },
  { sel: "a == 'a'", matches: [{ a: 'a' }], nonMatches: [{ a: 'A' }] },
  { sel: 'a != "a"', matches: [{}, { a: 'b' }, { b: 'a' }], nonMatches: [{ a: 'a' }] },
  { sel: 'has(a)', matches: [{ a: '' }, { a: 'x' }], nonMatches: [{}, { b: 'a' }] },
  { sel: '!has(a)', matches: [{}, { b: 'a' }], nonMatches: [{ a: '' }] },
  { sel: 'has( a )', matches: [{ a: 'x' }], nonMatches: [{}] },
  { sel: 'a in {"a", "b"}', matches: [{ a: 'a' }, { a: 'b' }], nonMatches: [{}, { a: 'c' }, { b: 'a' }] },
  { sel: 'a in {}', matches: [], nonMatches: [{}, { a: '' }] },
  { sel: 'a in {"x",}', matches: [{ a: 'x' }], nonMatches: [{}] },
  { sel: 'a not in {"a"}', matches: [{}, { a: 'b' }], nonMatches: [{ a: 'a' }] },
  { sel: 'a notin {"a"}', matches: [{ a: 'b' }], nonMatches: [{ a: 'a' }] },
  { sel: 'a not   in {}', matches: [{}, { a: 'a' }], nonMatches: [] },
  { sel: `a in {"'", '"', "c"}`, matches: [{ a: '"' }, { a: "'" }, { a: 'c' }], nonMatches: [{ a: 'b' }, {}] },
  { sel: '!has(b) && has(a)', matches: [{ a: 'a' }], nonMatches: [{ a: 'a', b: 'b' }, {}, { b: 'b' }] },
  { sel: '!(has(b) || !has(a))', matches: [{ a: 'a' }], nonMatches: [{ a: 'a', b: 'b' }, {}, { b: 'b' }] },
  { sel: "a != 'a1' || b != 'b1'", matches: [{}, { a: 'a1' }, { a: 'a1', b: 'x' }], nonMatches: [{ a: 'a1', b: 'b1' }] },
  {
    sel: "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
    matches: [{}, { 'my-label': 'prod-1', role: 'frontend' }, { role: 'db' }],
    nonMatches: [{ 'my-label': 'prod-1' }, { 'my-label': 'dev', role: 'frontend' }],
  },
  { sel: 'a contains "ell"', matches: [{ a: 'hello' }], nonMatches: [{ a: 'help' }, {}] },
  { sel: 'a starts with "he"', matches: [{ a: 'hello' }], nonMatches: [{ a: 'ohe' }, {}] },
  { sel: 'a ends  with "lo"', matches: [{ a: 'hello' }], nonMatches: [{ a: 'lol' }, {}] },
  {
    sel: 'app.kubernetes.io/name == "web" && projectcalico.org/namespace == "x"',
    matches: [{ 'app.kubernetes.io/name': 'web', 'projectcalico.org/namespace': 'x' }],
    nonMatches: [{ 'app.kubernetes.io/name': 'web' }, { 'projectcalico.org/namespace': 'x' }],
  },
  { sel: '!a == "x"', matches: [{}, { a: 'y' }], nonMatches: [{ a: 'x' }] },
  { sel: '!!has(a)', matches: [{ a: '1' }], nonMatches: [{}] },
  { sel: '!!!has(a)', matches: [{}], nonMatches: [{ a: '1' }] },
  { sel: 'in == "x"', matches: [{ in: 'x' }], nonMatches: [{}] },
  { sel: 'all == "x" && has == "y"', matches: [{ all: 'x', has: 'y' }], nonMatches: [{ all: 'x' }] },
  { sel: '  a  ==  "x"\t', matches: [{ a: 'x' }], nonMatches: [{}] },
  { sel: '((a == "1"))', matches: [{ a: '1' }], nonMatches: [{ a: '2' }] },
  { sel: 'a == "1" || b == "2" && c == "3"', matches: [{ a: '1' }, { b: '2', c: '3' }], nonMatches: [{ b: '2' }, { c: '3' }] },
  { sel: '(a == "1" || b == "2") && c == "3"', matches: [{ a: '1', c: '3' }], nonMatches: [{ a: '1' }, { b: '2' }] },
  { sel: 'a == ""', matches: [{ a: '' }], nonMatches: [{}, { a: 'x' }] },
  { sel: 'a != ""', matches: [{}, { a: 'x' }], nonMatches: [{ a: '' }] },
  { sel: 'a == "x y"', matches: [{ a: 'x y' }], nonMatches: [{ a: 'x' }] },
  { sel: 'a in {"x"}\n', matches: [{ a: 'x' }], nonMatches: [{}] },
];

describe('selector matches', () => {
  for (const row of table) {
    it(JSON.stringify(row.sel), () => {
      const s = parseSelector(row.sel);
      for (const l of row.matches) assert.equal(s.matches(labelsOf(l)), true, `should match ${JSON.stringify(l)}`);
      for (const l of row.nonMatches) assert.equal(s.matches(labelsOf(l)), false, `should not match ${JSON.stringify(l)}`);
      // The canonical form evaluates the same.
      const c = parseSelector(s.toString());
      for (const l of [...row.matches, ...row.nonMatches]) assert.equal(c.matches(labelsOf(l)), s.matches(labelsOf(l)));
    });
  }

  it('labels are looked up as own properties only', () => {
    assert.equal(parseSelector('has(toString)').matches(labelsOf({})), false);
    assert.equal(parseSelector('constructor == "x"').matches(labelsOf({ constructor: 'x' })), true);
  });

  it('ALL and NONE', () => {
    assert.equal(ALL.matches(labelsOf({})), true);
    assert.equal(NONE.matches(labelsOf({ a: 'b' })), false);
    assert.equal(ALL.isAll, true);
    assert.equal(NONE.toString(), '!all()');
  });
});

const bad: [string, number, string?][] = [
  ['a == "x" && && b', 13, `unexpected token '&&' at column 13 in selector "a == \\"x\\" && && b": expected a label, has(), all(), '!' or '('`],
  ['a ==', 5, `unexpected end of selector at column 5 in selector "a ==": expected a quoted string`],
  ['a == b', 6, `unexpected token 'b' at column 6 in selector "a == b": expected a quoted string`],
  ['a = "x"', 3, `unexpected token '=' at column 3 in selector "a = \\"x\\"": expected '=='`],
  ['a b', 3, `unexpected token 'b' at column 3 in selector "a b": expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a'`],
  ['has(a', 6, `unexpected end of selector at column 6 in selector "has(a": expected ')' to close has(`],
  ['has()', 5, `unexpected token ')' at column 5 in selector "has()": expected a label inside has()`],
  ['has (a)', 5],
  ['all(x)', 5],
  ['(a == "x"', 10, `unexpected end of selector at column 10 in selector "(a == \\"x\\"": expected ')'`],
  ['a == "x")', 9, `unexpected token ')' at column 9 in selector "a == \\"x\\")": expected '&&', '||' or the end of the selector`],
  ['a == "x', 6, `unterminated string at column 6 in selector "a == \\"x"`],
  ["a == 'x", 6],
  ['a in {"x"', 10, `unexpected end of selector at column 10 in selector "a in {\\"x\\"": expected ',' or '}'`],
  ['a in "x"', 6, `unexpected token '"x"' at column 6 in selector "a in \\"x\\"": expected '{'`],
  ['a in {x}', 7],
  ['a inx {"x"}', 3],
  ['a not {"x"}', 3],
  ['a starts "x"', 3],
  ['a & b', 3],
  ['a == "x" & b', 10, `unexpected token '&' at column 10 in selector "a == \\"x\\" & b": expected '&&'`],
  ['a == "x" | b', 10],
  ['#', 1, `unexpected character "#" at column 1 in selector "#"`],
  ['a == "x" ||', 12, `unexpected end of selector at column 12 in selector "a == \\"x\\" ||": expected a label, has(), all(), '!' or '('`],
  ['!', 2],
  ['()', 2],
  ['== "x"', 1],
  ['!= "x"', 1],
  ['a == "x" b == "y"', 10],
  ['aé == "x"', 2],
  [`a == "x" && ${'k'.repeat(513)} == "y"`, 13],
];

describe('selector syntax errors', () => {
  for (const [sel, column, message] of bad) {
    it(`${JSON.stringify(sel.length > 40 ? sel.slice(0, 40) + '…' : sel)} -> column ${column}`, () => {
      assert.throws(() => parseSelector(sel), (e: unknown) => {
        assert.ok(e instanceof SelectorSyntaxError, `expected SelectorSyntaxError, got ${String(e)}`);
        assert.equal(e.column, column, e.message);
        assert.equal(e.selector, sel);
        assert.match(e.message, new RegExp(` at column ${column} in selector `));
        if (message !== undefined) assert.equal(e.message, message);
        return true;
      });
      assert.equal(validate(sel), (() => { try { parseSelector(sel); return undefined; } catch (e) { return (e as Error).message; } })());
    });
  }

  it('validate() returns undefined for valid selectors', () => {
    assert.equal(validate('a == "b"'), undefined);
  });
});

const canonical: [string, string][] = [
  ['a=="x"', 'a == "x"'],
  ["a == 'x'", 'a == "x"'],
  [`a == '"'`, `a == '"'`],
  ['!has(a)', '!has(a)'],
  ['! has( a )', '!has(a)'],
  ['a in {"b","a","b"}', 'a in {"a", "b"}'],
  ['a not in {}', 'a not in {}'],
  ['a notin {"x"}', 'a not in {"x"}'],
  ['a == "x" && b == "y"', '(a == "x" && b == "y")'],
  ['a == "x" && (b == "y" && c == "z")', '(a == "x" && b == "y" && c == "z")'],
  ['a == "x" || b == "y" && c == "z"', '(a == "x" || (b == "y" && c == "z"))'],
  ['!(a == "x" || b == "y")', '!(a == "x" || b == "y")'],
  ['!a == "x"', '!a == "x"'],
  ['!!has(a)', 'has(a)'],
  ['', 'all()'],
  ['a starts  with "p" || a ends with "q" || a contains "r"', '(a starts with "p" || a ends with "q" || a contains "r")'],
];

describe('canonical form', () => {
  for (const [input, want] of canonical) {
    it(`${JSON.stringify(input)} -> ${want}`, () => {
      assert.equal(normalise(input), want);
      assert.equal(normalise(want), want, 'canonical form is a fixed point');
    });
  }

  it('ids are equal for equivalent spellings and differ otherwise', () => {
    assert.equal(parseSelector("a=='x'&&b=='y'").id, parseSelector('(a == "x") && (b == "y")').id);
    assert.notEqual(parseSelector('a == "x"').id, parseSelector('a == "y"').id);
    assert.match(parseSelector('a == "x"').id, /^s:[A-Za-z0-9_-]{27}$/);
  });
});
