// Selector facade: parse Calico selector text once into a Selector that evaluates
// itself against Labels, with a canonical string form and a stable id for dedupe.

import { createHash } from 'node:crypto';
import { AllNode, NotNode, type Labels, type SelectorNode } from './selector/ast.js';
import { parseNode } from './selector/parser.js';

export { SelectorSyntaxError } from './selector/errors.js';
export type { Labels, SelectorNode } from './selector/ast.js';

export class Selector {
  #text: string | undefined;
  #id: string | undefined;

  constructor(readonly root: SelectorNode) {}

  matches(labels: Labels): boolean {
    return this.root.matches(labels);
  }

  /** Canonical form; `parseSelector(s.toString())` evaluates exactly like `s`. */
  toString(): string {
    return (this.#text ??= this.root.toString());
  }

  /** Stable short id of the canonical form (like Calico's `s:<hash>` IP-set ids). */
  get id(): string {
    return (this.#id ??= 's:' + createHash('sha224').update(this.toString()).digest('base64url').slice(0, 27));
  }

  get isAll(): boolean {
    return this.root instanceof AllNode;
  }
}

/** Matches everything (the empty selector). */
export const ALL: Selector = new Selector(new AllNode());
/** Matches nothing. */
export const NONE: Selector = new Selector(new NotNode(new AllNode()));

/** Parses Calico selector syntax; throws SelectorSyntaxError (with `.column`) on bad input. */
export function parseSelector(text: string): Selector {
  return new Selector(parseNode(text));
}

export const parse = parseSelector;

/** Returns undefined if `text` is a valid selector, else the error message. */
export function validate(text: string): string | undefined {
  try {
    parseNode(text);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The canonical form of a selector text. */
export function normalise(text: string): string {
  return parseSelector(text).toString();
}

/** Labels over a plain record (own properties only). */
export class RecordLabels implements Labels {
  constructor(readonly record: Readonly<Record<string, string>>) {}
  get(key: string): string | undefined {
    return Object.hasOwn(this.record, key) ? this.record[key] : undefined;
  }
}

export function labelsOf(record: Readonly<Record<string, string>>): Labels {
  return new RecordLabels(record);
}
