// Endpoints as small numbers, so a cached flow stores its two local endpoints in
// two Uint16 columns instead of two object references. Index 0 is "no endpoint"
// (the remote side). Reference-counted per cached flow: an endpoint that no flow
// names any more (replaced, deleted) gives its index back, so the table is as
// big as the set of endpoints live flows name, never more.
//
// The per-packet check compares objects by index (`at(i) === ep`), with no map
// lookup; `ref()` (a map lookup) runs only when a flow is created.

import type { Endpoint } from '../dataplane/endpoint.js';

/** Most endpoints named at once (indexes are Uint16; 0 is none). */
export const MAX_ENDPOINTS = 0xffff;

export class EndpointIndex {
  #objects: (Endpoint | undefined)[] = [undefined];
  #refs = new Int32Array(16);
  readonly #index = new Map<Endpoint, number>();
  readonly #free: number[] = [];

  /** Endpoints with an index now. */
  get size(): number {
    return this.#index.size;
  }

  /** The endpoint at index `i` (0: undefined). */
  at(i: number): Endpoint | undefined {
    return this.#objects[i];
  }

  /** The index of `ep` with one more reference (0 for undefined); -1 when MAX_ENDPOINTS are in use. */
  ref(ep: Endpoint | undefined): number {
    if (ep === undefined) return 0;
    let i = this.#index.get(ep);
    if (i === undefined) {
      if (this.#free.length > 0) i = this.#free.pop()!;
      else {
        i = this.#objects.length;
        if (i > MAX_ENDPOINTS) return -1;
        this.#objects.push(undefined);
        if (i >= this.#refs.length) {
          const refs = new Int32Array(this.#refs.length * 2);
          refs.set(this.#refs);
          this.#refs = refs;
        }
      }
      this.#objects[i] = ep;
      this.#index.set(ep, i);
    }
    this.#refs[i]++;
    return i;
  }

  /** Drops one reference to index `i` (0: no-op). */
  unref(i: number): void {
    if (i === 0) return;
    if (--this.#refs[i] > 0) return;
    const ep = this.#objects[i]!;
    this.#index.delete(ep);
    this.#objects[i] = undefined;
    this.#free.push(i);
  }
}
