// Recursive-descent parser for Calico selectors (libcalico-go/lib/selector/parser):
//
//   selector := <empty> (= all()) | or
//   or       := and ( "||" and )*
//   and      := op ( "&&" op )*
//   op       := "!"* ( "(" or ")" | "all()" | "has(" LABEL ")"
//                    | LABEL ("==" | "!=" | "contains" | "starts with" | "ends with") STRING
//                    | LABEL ("in" | "not in") "{" [ STRING ("," STRING)* [","] ] "}" )
//
// `!` applies to the single following op; repeated `!` collapse.

import {
  AllNode, ContainsNode, EndsWithNode, EqNode, HasNode, InNode, NeNode, NotInNode, StartsWithNode,
  and, not, or, type SelectorNode,
} from './ast.js';
import { SelectorSyntaxError } from './errors.js';
import { tokenize, type Token } from './tokenizer.js';

const OP_START = "a label, has(), all(), '!' or '('";

export function parseNode(input: string): SelectorNode {
  const tokens = tokenize(input);
  let i = 0;

  function unexpected(tok: Token, expected?: string): never {
    const problem = tok.kind === 'eof' ? 'unexpected end of selector' : `unexpected token '${tok.raw}'`;
    throw new SelectorSyntaxError(problem, tok.pos + 1, input, expected);
  }

  function parseOr(): SelectorNode {
    const terms = [parseAnd()];
    while (tokens[i].kind === 'or') { i++; terms.push(parseAnd()); }
    return or(terms);
  }

  function parseAnd(): SelectorNode {
    const terms = [parseOp()];
    while (tokens[i].kind === 'and') { i++; terms.push(parseOp()); }
    return and(terms);
  }

  function parseString(): string {
    const t = tokens[i];
    if (t.kind !== 'string') unexpected(t, 'a quoted string');
    i++;
    return t.value;
  }

  function parseSet(): string[] {
    if (tokens[i].kind !== 'lbrace') unexpected(tokens[i], "'{'");
    i++;
    const values: string[] = [];
    while (tokens[i].kind === 'string') {
      values.push(tokens[i].value);
      i++;
      if (tokens[i].kind !== 'comma') break;
      i++;
    }
    if (tokens[i].kind !== 'rbrace') unexpected(tokens[i], values.length === 0 ? "a quoted string or '}'" : "',' or '}'");
    i++;
    return values;
  }

  function parseOp(): SelectorNode {
    let negated = false;
    while (tokens[i].kind === 'not') { negated = !negated; i++; }
    const t = tokens[i];
    let node: SelectorNode;
    switch (t.kind) {
      case 'all': i++; node = new AllNode(); break;
      case 'has': i++; node = new HasNode(t.value); break;
      case 'lparen': {
        i++;
        node = parseOr();
        if (tokens[i].kind !== 'rparen') unexpected(tokens[i], "')'");
        i++;
        break;
      }
      case 'label': {
        i++;
        const op = tokens[i++];
        switch (op.kind) {
          case 'eq': node = new EqNode(t.value, parseString()); break;
          case 'ne': node = new NeNode(t.value, parseString()); break;
          case 'contains': node = new ContainsNode(t.value, parseString()); break;
          case 'startswith': node = new StartsWithNode(t.value, parseString()); break;
          case 'endswith': node = new EndsWithNode(t.value, parseString()); break;
          case 'in': node = new InNode(t.value, parseSet()); break;
          case 'notin': node = new NotInNode(t.value, parseSet()); break;
          default: unexpected(op, 'an operator'); // the tokenizer already guarantees one
        }
        break;
      }
      default:
        unexpected(t, OP_START);
    }
    return negated ? not(node) : node;
  }

  if (tokens[0].kind === 'eof') return new AllNode();
  const root = parseOr();
  if (tokens[i].kind !== 'eof') unexpected(tokens[i], "'&&', '||' or the end of the selector");
  return root;
}
