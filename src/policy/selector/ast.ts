// Selector AST: every node evaluates itself against a Labels view and prints itself
// canonically (Calico's format: `a == "x"`, `has(a)`, `a in {"x", "y"}`, `(a && b)`,
// `(a || b)`, `!<op>`), so `parse(node.toString())` evaluates exactly like `node`.
//
// Missing-label semantics follow Calico: ==, in, has, contains, starts with, ends with
// are false when the label is absent; != and not in are true.

/** What selectors are evaluated against. */
export interface Labels {
  get(key: string): string | undefined;
}

export interface SelectorNode {
  readonly kind: NodeKind;
  matches(labels: Labels): boolean;
  toString(): string;
}

export type NodeKind =
  | 'all' | 'has' | 'eq' | 'ne' | 'in' | 'notin' | 'contains' | 'startswith' | 'endswith'
  | 'not' | 'and' | 'or';

/** Quotes a literal the way Calico does: double quotes unless the value holds one. */
export function quote(value: string): string {
  if (!value.includes('"')) return `"${value}"`;
  if (!value.includes("'")) return `'${value}'`;
  throw new TypeError(`selector value ${JSON.stringify(value)} holds both quote characters and cannot be written`);
}

export class AllNode implements SelectorNode {
  readonly kind = 'all';
  matches(): boolean { return true; }
  toString(): string { return 'all()'; }
}

export class HasNode implements SelectorNode {
  readonly kind = 'has';
  constructor(readonly label: string) {}
  matches(labels: Labels): boolean { return labels.get(this.label) !== undefined; }
  toString(): string { return `has(${this.label})`; }
}

export class EqNode implements SelectorNode {
  readonly kind = 'eq';
  constructor(readonly label: string, readonly value: string) { quote(value); }
  matches(labels: Labels): boolean { return labels.get(this.label) === this.value; }
  toString(): string { return `${this.label} == ${quote(this.value)}`; }
}

export class NeNode implements SelectorNode {
  readonly kind = 'ne';
  constructor(readonly label: string, readonly value: string) { quote(value); }
  matches(labels: Labels): boolean { return labels.get(this.label) !== this.value; }
  toString(): string { return `${this.label} != ${quote(this.value)}`; }
}

function sortedUnique(values: Iterable<string>): string[] {
  const out = [...new Set(values)].sort();
  for (const v of out) quote(v);
  return out;
}

export class InNode implements SelectorNode {
  readonly kind = 'in';
  readonly values: readonly string[];
  readonly #set: ReadonlySet<string>;
  constructor(readonly label: string, values: Iterable<string>) {
    this.values = sortedUnique(values);
    this.#set = new Set(this.values);
  }
  matches(labels: Labels): boolean {
    const v = labels.get(this.label);
    return v !== undefined && this.#set.has(v);
  }
  toString(): string { return `${this.label} in {${this.values.map(quote).join(', ')}}`; }
}

export class NotInNode implements SelectorNode {
  readonly kind = 'notin';
  readonly values: readonly string[];
  readonly #set: ReadonlySet<string>;
  constructor(readonly label: string, values: Iterable<string>) {
    this.values = sortedUnique(values);
    this.#set = new Set(this.values);
  }
  matches(labels: Labels): boolean {
    const v = labels.get(this.label);
    return v === undefined || !this.#set.has(v);
  }
  toString(): string { return `${this.label} not in {${this.values.map(quote).join(', ')}}`; }
}

export class ContainsNode implements SelectorNode {
  readonly kind = 'contains';
  constructor(readonly label: string, readonly value: string) { quote(value); }
  matches(labels: Labels): boolean { const v = labels.get(this.label); return v !== undefined && v.includes(this.value); }
  toString(): string { return `${this.label} contains ${quote(this.value)}`; }
}

export class StartsWithNode implements SelectorNode {
  readonly kind = 'startswith';
  constructor(readonly label: string, readonly value: string) { quote(value); }
  matches(labels: Labels): boolean { const v = labels.get(this.label); return v !== undefined && v.startsWith(this.value); }
  toString(): string { return `${this.label} starts with ${quote(this.value)}`; }
}

export class EndsWithNode implements SelectorNode {
  readonly kind = 'endswith';
  constructor(readonly label: string, readonly value: string) { quote(value); }
  matches(labels: Labels): boolean { const v = labels.get(this.label); return v !== undefined && v.endsWith(this.value); }
  toString(): string { return `${this.label} ends with ${quote(this.value)}`; }
}

export class NotNode implements SelectorNode {
  readonly kind = 'not';
  constructor(readonly operand: SelectorNode) {}
  matches(labels: Labels): boolean { return !this.operand.matches(labels); }
  // `!` binds to the single following operation, so `!a == "x"` reads back as !(a == "x").
  toString(): string { return `!${this.operand.toString()}`; }
}

export class AndNode implements SelectorNode {
  readonly kind = 'and';
  constructor(readonly operands: readonly SelectorNode[]) {
    if (operands.length < 2) throw new TypeError('AndNode needs at least two operands');
  }
  matches(labels: Labels): boolean {
    for (const op of this.operands) if (!op.matches(labels)) return false;
    return true;
  }
  toString(): string { return `(${this.operands.join(' && ')})`; }
}

export class OrNode implements SelectorNode {
  readonly kind = 'or';
  constructor(readonly operands: readonly SelectorNode[]) {
    if (operands.length < 2) throw new TypeError('OrNode needs at least two operands');
  }
  matches(labels: Labels): boolean {
    for (const op of this.operands) if (op.matches(labels)) return true;
    return false;
  }
  toString(): string { return `(${this.operands.join(' || ')})`; }
}

/** `!x`, collapsing double negation as Calico's parser does. */
export function not(node: SelectorNode): SelectorNode {
  return node instanceof NotNode ? node.operand : new NotNode(node);
}

/** `a && b && ...`, flattening nested ANDs; one operand is returned as is. */
export function and(nodes: readonly SelectorNode[]): SelectorNode {
  const flat: SelectorNode[] = [];
  for (const n of nodes) {
    if (n instanceof AndNode) flat.push(...n.operands); else flat.push(n);
  }
  if (flat.length === 0) return new AllNode();
  return flat.length === 1 ? flat[0] : new AndNode(flat);
}

/** `a || b || ...`, flattening nested ORs; one operand is returned as is. */
export function or(nodes: readonly SelectorNode[]): SelectorNode {
  const flat: SelectorNode[] = [];
  for (const n of nodes) {
    if (n instanceof OrNode) flat.push(...n.operands); else flat.push(n);
  }
  if (flat.length === 0) throw new TypeError('or() needs at least one operand');
  return flat.length === 1 ? flat[0] : new OrNode(flat);
}
