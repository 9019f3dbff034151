// The forwarding table of the overlay: which peer owns an inner destination
// (longest-prefix match over the peers' subnets) and which peer an underlay
// packet came from. Built from host records by the control plane; looked up per
// packet without allocation.

import type { Ipv6View } from '../packet/ipv6.js';
import { Peer, type PeerRecord } from './peer.js';
import { PrefixMap, type PrefixEntry } from './prefix-map.js';

export { Peer, type PeerRecord } from './peer.js';

export class PeerTable {
  #byName = new Map<string, Peer>();
  #dst4 = new PrefixMap<Peer>(32);
  #dst6 = new PrefixMap<Peer>(128);
  /** Underlay IPv4 (/32) → the peers at that address (normally one; several in labs, by port). */
  #underlay = new PrefixMap<Peer[]>(32);
  #generation = 0;

  /** @param defaultPort underlay port for records without one (the backend's default, e.g. 8472). */
  constructor(readonly defaultPort: number, records: readonly PeerRecord[] = []) {
    if (records.length > 0) this.replaceAll(records);
  }

  get size(): number {
    return this.#byName.size;
  }

  /** Incremented on every change, so caches derived from the table can tell they are stale. */
  get generation(): number {
    return this.#generation;
  }

  get(name: string): Peer | undefined {
    return this.#byName.get(name);
  }

  peers(): Peer[] {
    return [...this.#byName.values()];
  }

  /** Adds the host, or replaces the one with the same name. Throws (changing nothing) on bad input or a clash. */
  add(rec: PeerRecord): Peer {
    const peer = new Peer(rec, this.defaultPort);
    const next = new Map(this.#byName);
    next.set(peer.name, peer);
    this.#install(next);
    return peer;
  }

  /** Removes the host by name; false if it was not there. */
  remove(name: string): boolean {
    if (!this.#byName.has(name)) return false;
    const next = new Map(this.#byName);
    next.delete(name);
    this.#install(next);
    return true;
  }

  /** Replaces every peer at once; throws (changing nothing) if any record is bad or two clash. */
  replaceAll(records: readonly PeerRecord[]): void {
    const next = new Map<string, Peer>();
    for (const rec of records) {
      const peer = new Peer(rec, this.defaultPort);
      if (next.has(peer.name)) throw new Error(`peer "${peer.name}": duplicate name`);
      next.set(peer.name, peer);
    }
    this.#install(next);
  }

  /** The peer whose IPv4 subnet is the longest match for an int32 destination, or null. */
  lookupByDst4(dst: number): Peer | null {
    return this.#dst4.lookup4(dst);
  }

  /** The peer whose IPv6 subnet is the longest match for the packet's destination, or null. */
  lookupByDst6(v: Ipv6View): Peer | null {
    return this.#dst6.lookup(v.dstWord(0), v.dstWord(1), v.dstWord(2), v.dstWord(3));
  }

  /** Same as lookupByDst6 for a destination given as four int32 words. */
  lookupByDst6Words(w0: number, w1: number, w2: number, w3: number): Peer | null {
    return this.#dst6.lookup(w0, w1, w2, w3);
  }

  /**
   * The peer an underlay datagram came from. An exact (address, port) match wins;
   * otherwise, if exactly one peer has that address, it is returned whatever the
   * port, because a Linux VXLAN device sends from a hashed random source port
   * rather than from 8472. Several peers on one address with no port match: null.
   * @param addr uint32 (or int32) host-order IPv4 address
   */
  lookupByUnderlay(addr: number, port: number): Peer | null {
    const list = this.#underlay.lookup4(addr);
    if (list === null) return null;
    for (let i = 0; i < list.length; i++) if (list[i].port === port) return list[i];
    return list.length === 1 ? list[0] : null;
  }

  /** Validates clashes across peers, then swaps in new indexes (old ones stay valid for readers mid-batch). */
  #install(next: Map<string, Peer>): void {
    for (const p of next.values()) {
      const prev = this.#byName.get(p.name);
      if (prev !== undefined) p.counters = prev.counters;
    }
    const e4: PrefixEntry<Peer>[] = [];
    const e6: PrefixEntry<Peer>[] = [];
    const under = new Map<number, Peer[]>();
    const seen4 = new Map<string, Peer>();
    const seen6 = new Map<string, Peer>();
    for (const p of next.values()) {
      const k4 = `${p.net4}/${p.prefix4}`;
      clash(seen4, k4, p, 'subnet', p.record.subnet);
      e4.push({ words: [p.net4, 0, 0, 0], prefix: p.prefix4, value: p });
      if (p.prefix6 >= 0) {
        clash(seen6, `${p.net6.join(',')}/${p.prefix6}`, p, 'ipv6Subnet', p.record.ipv6Subnet);
        e6.push({ words: p.net6, prefix: p.prefix6, value: p });
      }
      const key = p.underlayAddr | 0;
      let list = under.get(key);
      if (!list) under.set(key, (list = []));
      for (const q of list) {
        if (q.port === p.port) {
          throw new Error(`peer "${p.name}": publicIP:port ${p.record.publicIP}:${p.port} is already used by peer "${q.name}"`);
        }
      }
      list.push(p);
    }
    const dst4 = new PrefixMap<Peer>(32);
    const dst6 = new PrefixMap<Peer>(128);
    const underlay = new PrefixMap<Peer[]>(32);
    dst4.rebuild(e4);
    dst6.rebuild(e6);
    underlay.rebuild([...under].map(([addr, list]) => ({ words: [addr, 0, 0, 0], prefix: 32, value: list })));
    this.#byName = next;
    this.#dst4 = dst4;
    this.#dst6 = dst6;
    this.#underlay = underlay;
    this.#generation++;
  }
}

function clash(seen: Map<string, Peer>, key: string, p: Peer, field: string, text: unknown): void {
  const other = seen.get(key);
  if (other) throw new Error(`peer "${p.name}": ${field} ${JSON.stringify(text)} is already owned by peer "${other.name}"`);
  seen.set(key, p);
}
