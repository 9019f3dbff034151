// What decided a flow's verdict — the policy generation it was computed under,
// and per direction a Decision, the deciding policy's id and the rule — interned:
// a cached flow stores one Int32 id instead of seven fields (two of them
// strings). Millions of flows share a few hundred distinct tuples (after a
// revalidation pass, all carry the current generation). Reference-counted per cached flow, so policy churn cannot grow the
// table: a tuple no flow names any more gives its id back. Id 0 is the tuple of a
// flow not decided yet (nothing checked) and is never freed.
//
// Interning runs when a verdict is installed (new flow, revalidation), never per
// packet.

import { Decision } from '../workers/batch-format.js';

export interface VerdictTuple {
  generation: number;
  egress: Decision;
  egressPolicy: string | undefined;
  egressRule: number;
  ingress: Decision;
  ingressPolicy: string | undefined;
  ingressRule: number;
}

export const NO_VERDICT = 0;

export class VerdictTable {
  readonly #tuples: (VerdictTuple | undefined)[] = [];
  readonly #keys: string[] = [];
  #refs = new Int32Array(16);
  readonly #byKey = new Map<string, number>();
  readonly #free: number[] = [];
  /** The id ref() returned last: flows of one batch mostly share a tuple, found without a key string. */
  #last = NO_VERDICT;

  constructor() {
    this.#add({ generation: 0, egress: Decision.NotChecked, egressPolicy: undefined, egressRule: -1, ingress: Decision.NotChecked, ingressPolicy: undefined, ingressRule: -1 },
      keyOf(0, Decision.NotChecked, undefined, -1, Decision.NotChecked, undefined, -1));
  }

  /** Distinct tuples named now (the permanent id 0 included). */
  get size(): number {
    return this.#byKey.size;
  }

  /** The tuple of id `i` (do not modify it). */
  get(i: number): VerdictTuple {
    return this.#tuples[i]!;
  }

  /** The id of this tuple with one more reference. */
  ref(generation: number, egress: Decision, egressPolicy: string | undefined, egressRule: number,
    ingress: Decision, ingressPolicy: string | undefined, ingressRule: number): number {
    const l = this.#tuples[this.#last];
    let i: number | undefined;
    if (l !== undefined && l.generation === generation && l.egress === egress && l.egressPolicy === egressPolicy &&
        l.egressRule === egressRule && l.ingress === ingress && l.ingressPolicy === ingressPolicy && l.ingressRule === ingressRule) {
      i = this.#last;
    } else {
      const key = keyOf(generation, egress, egressPolicy, egressRule, ingress, ingressPolicy, ingressRule);
      i = this.#byKey.get(key);
      if (i === undefined) i = this.#add({ generation, egress, egressPolicy, egressRule, ingress, ingressPolicy, ingressRule }, key);
      this.#last = i;
    }
    if (i !== NO_VERDICT) this.#refs[i]++;
    return i;
  }

  /** Drops one reference to id `i`. */
  unref(i: number): void {
    if (i === NO_VERDICT || --this.#refs[i] > 0) return;
    if (i === this.#last) this.#last = NO_VERDICT;
    this.#byKey.delete(this.#keys[i]);
    this.#tuples[i] = undefined;
    this.#keys[i] = '';
    this.#free.push(i);
  }

  #add(t: VerdictTuple, key: string): number {
    let i: number;
    if (this.#free.length > 0) i = this.#free.pop()!;
    else {
      i = this.#tuples.length;
      this.#tuples.push(undefined);
      this.#keys.push('');
      if (i >= this.#refs.length) {
        const refs = new Int32Array(this.#refs.length * 2);
        refs.set(this.#refs);
        this.#refs = refs;
      }
    }
    this.#tuples[i] = t;
    this.#keys[i] = key;
    this.#byKey.set(key, i);
    return i;
  }
}

function keyOf(gen: number, eg: number, egPolicy: string | undefined, egRule: number, ing: number, ingPolicy: string | undefined, ingRule: number): string {
  // Length-prefixed ids: unambiguous whatever they contain; undefined is '-'.
  const e = egPolicy === undefined ? '-' : `${egPolicy.length}:${egPolicy}`;
  const i = ingPolicy === undefined ? '-' : `${ingPolicy.length}:${ingPolicy}`;
  return `${gen} ${eg} ${egRule} ${ing} ${ingRule} ${e}${i}`;
}
