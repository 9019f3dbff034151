// Tokenizer for Calico's selector language (libcalico-go/lib/selector/tokenizer).
//
// Like Calico's, it is context sensitive: right after a label only an operator may
// follow (==, !=, in, not in, contains, starts with, ends with), so a label may itself
// be called "in" or "all". Differences from Calico, all lenient and semantics-free:
// newlines and carriage returns count as whitespace (YAML block scalars end in one),
// and operator keywords need a word boundary ("a inx {}" is an error, not "a in x").

import { SelectorSyntaxError } from './errors.js';

export type TokenKind =
  | 'label' | 'string' | 'lbrace' | 'rbrace' | 'comma' | 'lparen' | 'rparen'
  | 'eq' | 'ne' | 'in' | 'notin' | 'contains' | 'startswith' | 'endswith'
  | 'not' | 'and' | 'or' | 'all' | 'has' | 'eof';

export interface Token {
  kind: TokenKind;
  /** Label name or string literal contents; the raw text for other kinds. */
  value: string;
  /** 0-based offset of the token's first character. */
  pos: number;
  /** The token as written (used in error messages). */
  raw: string;
}

const MAX_LABEL = 512;

function isLabelChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) ||
    c === 95 /* _ */ || c === 46 /* . */ || c === 47 /* / */ || c === 45 /* - */;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function isAlpha(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

/** "unexpected token 'x'" / "unexpected end of selector" for what starts at `pos`. */
export function unexpectedAt(input: string, pos: number): string {
  if (pos >= input.length) return 'unexpected end of selector';
  let end = pos;
  if (isLabelChar(input.charCodeAt(pos))) {
    while (end < input.length && isLabelChar(input.charCodeAt(end)) && end - pos < 40) end++;
  } else {
    end = pos + 1;
  }
  return `unexpected token '${input.slice(pos, end)}'`;
}

export function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  const n = input.length;
  let i = 0;
  function fail(problem: string, at: number, expected?: string): never {
    throw new SelectorSyntaxError(problem, at + 1, input, expected);
  }
  const readLabel = (start: number): number => {
    let j = start;
    while (j < n && isLabelChar(input.charCodeAt(j))) j++;
    if (j - start > MAX_LABEL) fail(`label longer than ${MAX_LABEL} characters`, start);
    return j;
  };
  const skipSpace = (from: number): number => {
    let j = from;
    while (j < n && isSpace(input.charCodeAt(j))) j++;
    return j;
  };
  const push = (kind: TokenKind, value: string, pos: number, end: number): void => {
    tokens.push({ kind, value, pos, raw: input.slice(pos, end) });
  };

  for (;;) {
    i = skipSpace(i);
    if (i >= n) {
      tokens.push({ kind: 'eof', value: '', pos: n, raw: '' });
      return tokens;
    }
    const c = input.charCodeAt(i);
    const last = tokens.length > 0 ? tokens[tokens.length - 1].kind : undefined;
    // A label that starts an operation must be followed by an operator. (A label in a
    // value position, as in `a == b`, is left for the parser to reject at its column.)
    const beforeLast = tokens.length > 1 ? tokens[tokens.length - 2].kind : undefined;
    const operandLabel = last === 'label' &&
      (beforeLast === undefined || beforeLast === 'lparen' || beforeLast === 'not' || beforeLast === 'and' || beforeLast === 'or');
    if (operandLabel) {
      // Only an operator may follow a label.
      if (c === 61 /* = */) {
        if (input.charCodeAt(i + 1) !== 61) fail(unexpectedAt(input, i), i, "'=='");
        push('eq', '==', i, i + 2); i += 2; continue;
      }
      if (c === 33 /* ! */ && input.charCodeAt(i + 1) === 61) { push('ne', '!=', i, i + 2); i += 2; continue; }
      if (isAlpha(c)) {
        let j = i;
        while (j < n && isAlpha(input.charCodeAt(j))) j++;
        const word = input.slice(i, j);
        const next = j < n ? input.charCodeAt(j) : -1;
        const boundary = next === -1 || !isLabelChar(next);
        if (boundary) {
          if (word === 'in') { push('in', 'in', i, j); i = j; continue; }
          if (word === 'notin') { push('notin', 'not in', i, j); i = j; continue; }
          if (word === 'contains') { push('contains', 'contains', i, j); i = j; continue; }
          if (word === 'not' || word === 'starts' || word === 'ends') {
            const k = skipSpace(j);
            const want = word === 'not' ? 'in' : 'with';
            let m = k;
            while (m < n && isAlpha(input.charCodeAt(m))) m++;
            const after = m < n ? input.charCodeAt(m) : -1;
            if (k > j && input.slice(k, m) === want && (after === -1 || !isLabelChar(after))) {
              const kind: TokenKind = word === 'not' ? 'notin' : word === 'starts' ? 'startswith' : 'endswith';
              push(kind, `${word} ${want}`, i, m); i = m; continue;
            }
          }
        }
      }
      fail(unexpectedAt(input, i), i,
        `an operator (==, !=, in, not in, contains, starts with, ends with) after label '${tokens[tokens.length - 1].value}'`);
    }
    switch (c) {
      case 40: push('lparen', '(', i, i + 1); i++; continue;
      case 41: push('rparen', ')', i, i + 1); i++; continue;
      case 123: push('lbrace', '{', i, i + 1); i++; continue;
      case 125: push('rbrace', '}', i, i + 1); i++; continue;
      case 44: push('comma', ',', i, i + 1); i++; continue;
      case 34: case 39: { // " or ': no escapes, the other quote kind may appear inside
        const close = input.indexOf(c === 34 ? '"' : "'", i + 1);
        if (close < 0) fail('unterminated string', i);
        push('string', input.slice(i + 1, close), i, close + 1);
        i = close + 1;
        continue;
      }
      case 33: // ! or a stray != (the parser reports the latter where it stands)
        if (input.charCodeAt(i + 1) === 61) { push('ne', '!=', i, i + 2); i += 2; continue; }
        push('not', '!', i, i + 1); i++; continue;
      case 38: // &&
        if (input.charCodeAt(i + 1) !== 38) fail("unexpected token '&'", i, "'&&'");
        push('and', '&&', i, i + 2); i += 2; continue;
      case 124: // ||
        if (input.charCodeAt(i + 1) !== 124) fail("unexpected token '|'", i, "'||'");
        push('or', '||', i, i + 2); i += 2; continue;
      case 61: // == with no label before it: a token the parser rejects; a lone = is lexically wrong
        if (input.charCodeAt(i + 1) !== 61) fail("unexpected token '='", i, "'=='");
        push('eq', '==', i, i + 2); i += 2; continue;
    }
    if (isLabelChar(c)) {
      // has( label ) and all( ) are single tokens, as in Calico; "has" without "(" is a label.
      if (input.startsWith('has(', i)) {
        const k = skipSpace(i + 4);
        const e = readLabel(k);
        if (e === k) fail(unexpectedAt(input, k), k, 'a label inside has()');
        const r = skipSpace(e);
        if (input.charCodeAt(r) !== 41) fail(unexpectedAt(input, r), r, "')' to close has(");
        push('has', input.slice(k, e), i, r + 1);
        i = r + 1;
        continue;
      }
      if (input.startsWith('all(', i)) {
        const r = skipSpace(i + 4);
        if (input.charCodeAt(r) !== 41) fail(unexpectedAt(input, r), r, "')' to close all(");
        push('all', 'all()', i, r + 1);
        i = r + 1;
        continue;
      }
      const e = readLabel(i);
      push('label', input.slice(i, e), i, e);
      i = e;
      continue;
    }
    fail(`unexpected character ${JSON.stringify(input[i])}`, i);
  }
}
