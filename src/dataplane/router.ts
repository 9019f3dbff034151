// Where a destination address lives: a local endpoint, a peer host's subnet, or
// nowhere. Lookups take numbers and allocate nothing.
import type { Peer, PeerTable } from '../overlay/peer-table.js';
import type { Endpoint } from './endpoint.js';

export class Router {
  readonly #local4 = new Map<number, Endpoint>();
  #local6: Endpoint[] = [];
  #generation = 0;

  constructor(readonly peers: PeerTable) {}

  /** Changes whenever a route may have changed (endpoints or peers): cached forwarding decisions are stale. */
  get generation(): number {
    return this.#generation + this.peers.generation;
  }

  setEndpoints(endpoints: Iterable<Endpoint>): void {
    this.#generation++;
    this.#local4.clear();
    const v6: Endpoint[] = [];
    for (const ep of endpoints) {
      this.#local4.set(ep.ip4, ep);
      if (ep.ip6) v6.push(ep);
    }
    this.#local6 = v6;
  }

  local4(dst: number): Endpoint | undefined {
    return this.#local4.get(dst);
  }

  /** Endpoints with IPv6 are few per host; a scan beats hashing four words. */
  local6(w0: number, w1: number, w2: number, w3: number): Endpoint | undefined {
    const eps = this.#local6;
    for (let i = 0; i < eps.length; i++) {
      const a = eps[i].ip6!;
      if (a[3] === w3 && a[2] === w2 && a[1] === w1 && a[0] === w0) return eps[i];
    }
    return undefined;
  }

  peer4(dst: number): Peer | null {
    return this.peers.lookupByDst4(dst);
  }

  peer6(w0: number, w1: number, w2: number, w3: number): Peer | null {
    return this.peers.lookupByDst6Words(w0, w1, w2, w3);
  }
}
