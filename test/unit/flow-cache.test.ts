import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CLOCK_SCAN, FlowCache } from '../../src/flow/flow-cache.js';
import { FlowEntry, FlowState, TcpBits } from '../../src/flow/flow-entry.js';
import { FlowKey } from '../../src/packet/flow-key.js';
import { IpProto } from '../../src/packet/proto.js';
import { Decision } from '../../src/workers/batch-format.js';
import { EndpointIndex } from '../../src/flow/endpoint-index.js';
import { NO_VERDICT, VerdictTable } from '../../src/flow/verdict-table.js';
import { endpoint, ip4 } from './flow-fixtures.js';
import { TCP } from './packet-fixtures.js';
import { gcsDuring } from './gc-count.js';

const A = ip4('10.0.1.10'), B = ip4('10.0.1.11');
const epA = endpoint('x', 'a', '10.0.1.10');
const epB = endpoint('x', 'b', '10.0.1.11');

function tcpKey(src: number, dst: number, sport: number, dport: number): FlowKey {
  return new FlowKey().setV4(IpProto.TCP, src, dst, sport, dport);
}

/** Creates and settles a flow, as the enforcer does once a verdict arrives; returns its slot. */
function settle(c: FlowCache, k: FlowKey, state: FlowState, from: typeof epA | undefined = epA, to: typeof epB | undefined = epB): number {
  const s = c.create(k, from, to);
  assert.ok(s > 0, 'flow created');
  c.setState(s, state);
  c.refreshExpiry(s);
  return s;
}

describe('FlowCache lookups', () => {
  it('misses, then hits the forward key and (for Allowed) the reply', () => {
    const c = new FlowCache({ max: 16 });
    const k = tcpKey(A, B, 40000, 80);
    assert.equal(c.lookup(k, epA, epB), -1);
    const e = settle(c, k, FlowState.Allowed);
    assert.equal(c.lookup(k, epA, epB), e);
    assert.equal(c.reverse, false);
    const r = new FlowKey().copyFrom(k).reverse();
    assert.equal(c.lookup(r, epB, epA), e);
    assert.equal(c.reverse, true);
  });

  it('a Denied entry applies to its own direction only; a Revoked one to both', () => {
    const c = new FlowCache({ max: 16 });
    const k = tcpKey(A, B, 40000, 80);
    const r = new FlowKey().copyFrom(k).reverse();
    const e = settle(c, k, FlowState.Denied);
    assert.equal(c.lookup(k, epA, epB), e);
    assert.equal(c.lookup(r, epB, epA), -1, 'the reply direction is a flow of its own');
    c.setState(e, FlowState.Revoked);
    assert.equal(c.lookup(r, epB, epA), e);
    assert.equal(c.reverse, true);
  });

  it('a Pending entry matches its own direction only', () => {
    const c = new FlowCache({ max: 16 });
    const k = tcpKey(A, B, 40000, 80);
    const e = c.create(k, epA, epB);
    assert.equal(c.state(e), FlowState.Pending);
    assert.equal(c.lookup(k, epA, epB), e);
    assert.equal(c.lookup(new FlowKey().copyFrom(k).reverse(), epB, epA), -1);
  });

  it('ICMP echo replies match the request entry (type 8 <-> 0)', () => {
    const c = new FlowCache({ max: 16 });
    const k = new FlowKey().setV4(IpProto.ICMP, A, B, 7, 7);
    k.icmpType = 8;
    const e = settle(c, k, FlowState.Allowed);
    const reply = new FlowKey().setV4(IpProto.ICMP, B, A, 7, 7);
    reply.icmpType = 0;
    assert.equal(c.lookup(reply, epB, epA), e);
    assert.equal(c.reverse, true);
    const other = new FlowKey().setV4(IpProto.ICMP, B, A, 8, 8);
    other.icmpType = 0;
    assert.equal(c.lookup(other, epB, epA), -1, 'another echo id is another flow');
  });

  it('an entry for other endpoints (an endpoint was replaced) is stale: removed, a miss', () => {
    const c = new FlowCache({ max: 16 });
    const k = tcpKey(A, B, 40000, 80);
    settle(c, k, FlowState.Allowed);
    const epB2 = endpoint('x', 'b2', '10.0.1.11');
    assert.equal(c.lookup(k, epA, epB2), -1);
    assert.equal(c.size, 0);
  });

  it('isReverseOf agrees with reverse().equals for random keys, including ICMP', () => {
    const keyArb = fc.record({
      family: fc.constantFrom(4, 6),
      protocol: fc.constantFrom(IpProto.TCP, IpProto.UDP, IpProto.ICMP, IpProto.ICMPv6, 47),
      w: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 8, maxLength: 8 }),
      sport: fc.integer({ min: 0, max: 3 }),
      dport: fc.integer({ min: 0, max: 3 }),
      type: fc.constantFrom(0, 8, 13, 14, 3, 128, 129),
      code: fc.integer({ min: 0, max: 1 }),
    });
    const make = (r: { family: number; protocol: number; w: number[]; sport: number; dport: number; type: number; code: number }): FlowKey => {
      const k = new FlowKey();
      k.family = r.family; k.protocol = r.protocol;
      [k.src0, k.src1, k.src2, k.src3, k.dst0, k.dst1, k.dst2, k.dst3] = r.w;
      if (r.family === 4) k.src1 = k.src2 = k.src3 = k.dst1 = k.dst2 = k.dst3 = 0;
      k.srcPort = r.sport; k.dstPort = r.dport; k.icmpType = r.type; k.icmpCode = r.code;
      return k;
    };
    fc.assert(fc.property(keyArb, keyArb, (a, b) => {
      const e = new FlowEntry().copyFrom(make(a));
      const k = make(b);
      const expected = new FlowKey().copyFrom(e).reverse().equals(k);
      assert.equal(e.isReverseOf(k), expected);
      // And the reverse of the entry's own key always matches.
      assert.equal(e.isReverseOf(new FlowKey().copyFrom(e).reverse()), true);
    }), { numRuns: 2000 });
  });
});

describe('FlowCache counters and TCP state', () => {
  it('counts packets and bytes per direction', () => {
    const c = new FlowCache({ max: 16 });
    const k = tcpKey(A, B, 40000, 80);
    const e = settle(c, k, FlowState.Allowed);
    c.account(e, false, 60, TCP.SYN);
    c.account(e, true, 60, TCP.SYN | TCP.ACK);
    c.account(e, false, 1500, TCP.ACK);
    const r = c.read(e);
    assert.deepEqual([r.fwdPackets, r.fwdBytes, r.revPackets, r.revBytes], [2, 1560, 1, 60]);
  });

  it('expires tcpClosingMs after FIN both ways, and later packets do not extend it', () => {
    const c = new FlowCache({ max: 16, tcpClosingMs: 5000, tcpEstablishedMs: 600_000 });
    const k = tcpKey(A, B, 40000, 80), r = new FlowKey().copyFrom(k).reverse();
    const e = settle(c, k, FlowState.Allowed);
    c.setNow(1000);
    c.account(e, false, 60, TCP.SYN);
    c.account(e, true, 60, TCP.SYN | TCP.ACK);
    assert.equal(c.expiresAt(e), 1000 + 600_000, 'established: the long idle timeout');
    c.account(e, false, 60, TCP.FIN | TCP.ACK);
    assert.equal(c.tcp(e) & TcpBits.Closing, 0, 'one FIN is a half-close');
    c.setNow(2000);
    c.account(e, true, 60, TCP.FIN | TCP.ACK);
    assert.ok(c.tcp(e) & TcpBits.Closing);
    assert.equal(c.expiresAt(e), 7000);
    c.setNow(3000);
    c.account(e, false, 60, TCP.ACK); // the last ACK
    assert.equal(c.expiresAt(e), 7000, 'closing is not extended');
    c.setNow(6999);
    assert.equal(c.lookup(r, epB, epA), e);
    c.setNow(7000);
    assert.equal(c.lookup(k, epA, epB), -1);
    assert.equal(c.expired, 1);
    assert.equal(c.size, 0);
  });

  it('expires soon after an RST in either direction', () => {
    const c = new FlowCache({ max: 16, tcpClosingMs: 5000 });
    const k = tcpKey(A, B, 40000, 80);
    const e = settle(c, k, FlowState.Allowed);
    c.account(e, false, 60, TCP.SYN);
    c.setNow(100);
    c.account(e, true, 40, TCP.RST | TCP.ACK);
    assert.equal(c.expiresAt(e), 5100);
    c.setNow(5100);
    assert.equal(c.lookup(k, epA, epB), -1);
  });

  it('a SYN on a closing entry starts the connection over', () => {
    const c = new FlowCache({ max: 16, tcpClosingMs: 5000, tcpOpeningMs: 60_000 });
    const k = tcpKey(A, B, 40000, 80);
    const e = settle(c, k, FlowState.Allowed);
    c.account(e, false, 40, TCP.RST);
    c.setNow(10);
    c.account(e, false, 60, TCP.SYN);
    assert.equal(c.tcp(e) & TcpBits.Closing, 0);
    assert.equal(c.expiresAt(e), 60_010);
  });

  it('idle timeouts: TCP opening / established, UDP, ICMP — lazily on lookup', () => {
    const c = new FlowCache({ max: 16, tcpOpeningMs: 30_000, tcpEstablishedMs: 600_000, udpIdleMs: 60_000, otherIdleMs: 20_000 });
    const t = tcpKey(A, B, 1, 80);
    const u = new FlowKey().setV4(IpProto.UDP, A, B, 1, 53);
    const i = new FlowKey().setV4(IpProto.ICMP, A, B, 9, 9);
    i.icmpType = 8;
    const et = settle(c, t, FlowState.Allowed), eu = settle(c, u, FlowState.Allowed), ei = settle(c, i, FlowState.Allowed);
    c.account(et, false, 60, TCP.SYN);
    c.account(eu, false, 60, 0);
    c.account(ei, false, 60, 0);
    // Only packets (account) refresh an entry; lookups alone do not.
    c.setNow(19_999);
    assert.equal(c.lookup(i, epA, epB), ei);
    c.account(ei, false, 60, 0);
    c.setNow(39_998);
    assert.equal(c.lookup(i, epA, epB), ei);
    c.setNow(39_999); // refreshed at 19,999 -> expires 39,999
    assert.equal(c.lookup(i, epA, epB), -1);
    assert.equal(c.lookup(t, epA, epB), -1, 'unanswered TCP expires after tcpOpeningMs');
    assert.equal(c.lookup(u, epA, epB), eu);
    c.account(eu, false, 60, 0);
    c.setNow(99_998);
    assert.equal(c.lookup(u, epA, epB), eu);
    c.setNow(99_999);
    assert.equal(c.lookup(u, epA, epB), -1);
    assert.equal(c.expired, 3);
  });
});

describe('FlowCache bounds', () => {
  it('stays within max under a flood of 100k distinct flows (CLOCK: the flows in use survive)', () => {
    const max = 10_000;
    const c = new FlowCache({ max });
    // The busy flow is created first, so it sits where the hand starts; the working set
    // (2,000 flows, more in a row than a FIFO or a walk that ignores the bit would spare)
    // is hit once per 1,000 new flows, less often than the busy one.
    const busy = tcpKey(A, B, 5555, 443);
    const be = settle(c, busy, FlowState.Allowed);
    const work = Array.from({ length: 2000 }, (_, i) => tcpKey(A, B, 10_000 + i, 80));
    const ws = work.map((k) => settle(c, k, FlowState.Allowed));
    const k = new FlowKey();
    for (let n = 0; n < 100_000; n++) {
      k.setV4(IpProto.UDP, ip4('192.168.0.0') + (n >>> 16), B, n & 0xffff, 53);
      if (c.lookup(k, undefined, epB) < 0) settle(c, k, FlowState.Allowed, undefined, epB);
      if (n % 100 === 0) assert.equal(c.lookup(busy, epA, epB), be, 'the busy flow is still cached');
      if (n % 1000 === 0) for (let i = 0; i < work.length; i++) assert.equal(c.lookup(work[i], epA, epB), ws[i], `working-set flow ${i} still cached at ${n}`);
      assert.ok(c.chains <= max);
    }
    assert.ok(c.size <= max);
    assert.ok(c.size >= max - 10, `size ${c.size}`);
    assert.ok(c.capacity <= max + 1, 'the columns never outgrow max');
    assert.ok(c.evicted >= 100_000 - max + work.length, `evicted ${c.evicted}`);
    assert.equal(c.lookup(busy, epA, epB), be);
  });

  it('CLOCK: a hit gives a flow a second chance; the hand evicts the first settled flow not hit since it passed', () => {
    const c = new FlowCache({ max: 4 });
    const keys = [1, 2, 3, 4, 5, 6, 7].map((p) => tcpKey(A, B, p, 80));
    const port = (s: number): number => c.read(s).srcPort;
    const [s1, s2, s3, s4] = keys.slice(0, 4).map((k) => settle(c, k, FlowState.Allowed));
    assert.deepEqual([s1, s2, s3, s4], [1, 2, 3, 4]);
    assert.equal(c.referenced(s1), false, 'a new flow starts with its bit clear');
    assert.equal(c.lookup(keys[0], epA, epB), s1);
    assert.equal(c.lookup(new FlowKey().copyFrom(keys[2]).reverse(), epB, epA), s3, 'a reply hits too');
    assert.deepEqual([s1, s2, s3, s4].map((s) => c.referenced(s)), [true, false, true, false]);
    c.peekExact(keys[1]);
    c.peekFlow(keys[3]);
    assert.deepEqual([s1, s2, s3, s4].map((s) => c.referenced(s)), [true, false, true, false], 'peeks do not count as use');
    // The hand starts at slot 1: 1 is referenced (cleared, passed), 2 is not: evicted.
    assert.equal(settle(c, keys[4], FlowState.Allowed), s2, 'the new flow takes the evicted slot');
    assert.equal(c.peekExact(keys[1]), -1);
    assert.deepEqual([s1, s3].map((s) => c.referenced(s)), [false, true], 'the hand cleared the bit it passed');
    // Hand at 3: 3 referenced (cleared), 4 not: evicted.
    assert.equal(settle(c, keys[5], FlowState.Allowed), s4);
    assert.equal(c.peekExact(keys[3]), -1);
    // Hand at 1 (wrapped): 1 was cleared by the first walk and not hit since: evicted, though
    // the flows behind the hand (5 in slot 2, 6 in slot 4) are newer and were never hit.
    assert.equal(c.lookup(keys[2], epA, epB), s3);
    assert.equal(settle(c, keys[6], FlowState.Allowed), s1);
    assert.equal(c.peekExact(keys[0]), -1);
    assert.deepEqual([...c.dumpSlots()].map(port), [3, 7, 6, 5], 'those in use first, then newest first: backwards from the hand');
    assert.equal(c.evicted, 3);
  });

  it('CLOCK: pending flows are passed over, and evicted only when every flow is pending', () => {
    const c = new FlowCache({ max: 3 });
    const gone: number[] = [];
    c.onPendingUnlinked = (s) => gone.push(s);
    const keys = [1, 2, 3, 4, 5, 6].map((p) => tcpKey(A, B, p, 80));
    const p1 = c.create(keys[0], epA, epB);
    const p2 = c.create(keys[1], epA, epB);
    const s3 = settle(c, keys[2], FlowState.Allowed);
    assert.equal(c.lookup(keys[2], epA, epB), s3);
    assert.equal(settle(c, keys[3], FlowState.Allowed), s3, 'the only settled flow goes, though it was hit (two turns)');
    assert.equal(gone.length, 0);
    assert.equal(c.referenced(p1), false);
    assert.equal(c.lookup(keys[0], epA, epB), p1, 'a held packet of a pending flow hits it');
    assert.equal(c.referenced(p1), true);
    c.setState(p1, FlowState.Allowed);
    c.refreshExpiry(p1);
    // Hand at 1 (wrapped from 3): p1 settled now, referenced: a second chance; p2 pending: passed;
    // slot 3 (keys[3]) not hit: evicted.
    assert.equal(settle(c, keys[4], FlowState.Allowed), s3);
    assert.equal(c.peekExact(keys[3]), -1);
    assert.deepEqual([c.peekExact(keys[0]), c.peekExact(keys[1])], [p1, p2]);
    // All pending: the first pending flow from the hand goes, and its owner is told.
    const d = new FlowCache({ max: 2 });
    d.onPendingUnlinked = (s) => gone.push(s);
    const q1 = d.create(keys[0], epA, epB);
    d.create(keys[1], epA, epB);
    assert.equal(d.create(keys[2], epA, epB), q1);
    assert.deepEqual(gone, [q1]);
    assert.equal(d.size, 2);
  });

  it(`CLOCK: one eviction walks at most ${CLOCK_SCAN} slots, then takes the last settled flow it passed`, () => {
    const max = CLOCK_SCAN + 1000;
    const c = new FlowCache({ max, initialSlots: max + 1 });
    const k = new FlowKey();
    const key = (n: number) => k.setV4(IpProto.UDP, ip4('192.168.0.0') + (n >>> 16), B, n & 0xffff, 53);
    for (let n = 0; n < max; n++) {
      assert.equal(settle(c, key(n), FlowState.Allowed), n + 1);
      c.lookup(key(n), epA, epB); // every flow in use
    }
    const victim = settle(c, key(max), FlowState.Allowed);
    assert.equal(victim, CLOCK_SCAN, 'the last slot the walk reached');
    let cleared = 0;
    for (let s = 1; s <= max; s++) if (!c.referenced(s)) cleared++;
    assert.equal(cleared, CLOCK_SCAN, 'the walk cleared exactly the bits it passed (the new flow\'s is clear too)');
    // The next walk goes on from the hand: clears the 1,000 bits it had not reached, wraps,
    // and finds slot 1 not hit since.
    assert.equal(settle(c, key(max + 1), FlowState.Allowed), 1);
    assert.equal(c.evicted, 2);
  });

  it('keeps colliding flows apart in one chain, and bounds the chain', () => {
    const c = new FlowCache({ max: 16, maxChain: 4, hash: () => 42 });
    const keys = Array.from({ length: 6 }, (_, i) => tcpKey(A, B, 1000 + i, 80));
    const entries: number[] = [];
    for (let i = 0; i < 4; i++) {
      c.setNow(i);
      entries.push(settle(c, keys[i], i % 2 === 0 ? FlowState.Allowed : FlowState.Denied));
    }
    assert.equal(c.chains, 1);
    assert.equal(c.size, 4);
    for (let i = 0; i < 4; i++) assert.equal(c.lookup(keys[i], epA, epB), entries[i]);
    // Reply direction of key 0 (Allowed) finds entry 0; of key 1 (Denied) nothing.
    assert.equal(c.lookup(new FlowKey().copyFrom(keys[0]).reverse(), epB, epA), entries[0]);
    assert.equal(c.lookup(new FlowKey().copyFrom(keys[1]).reverse(), epB, epA), -1);
    // A fifth flow displaces a settled entry: all four were hit, so the one expiring first (entry 0).
    const e4 = settle(c, keys[4], FlowState.Allowed);
    assert.equal(c.size, 4);
    assert.equal(c.chainFull, 1);
    assert.equal(c.peekExact(keys[0]), -1);
    assert.equal(c.lookup(keys[0], epA, epB), -1);
    assert.equal(c.lookup(keys[4], epA, epB), e4);
    // Removing the head keeps the rest reachable.
    c.remove(entries[1]);
    for (const i of [2, 3, 4]) assert.ok(c.lookup(keys[i], epA, epB));
    assert.equal(c.size, 3);
  });

  it('refuses a new flow when its chain is full of pending flows', () => {
    const c = new FlowCache({ max: 16, maxChain: 2, hash: () => 7 });
    assert.ok(c.create(tcpKey(A, B, 1, 80), epA, epB) > 0);
    assert.ok(c.create(tcpKey(A, B, 2, 80), epA, epB) > 0);
    assert.equal(c.create(tcpKey(A, B, 3, 80), epA, epB), -1);
    assert.equal(c.size, 2);
  });

  it('tells the owner when a pending flow is evicted or replaced, and a flow read out can be inserted again', () => {
    const c = new FlowCache({ max: 1 });
    const gone: number[] = [];
    c.onPendingUnlinked = (s) => gone.push(s);
    const k1 = tcpKey(A, B, 1, 80), k2 = tcpKey(A, B, 2, 80);
    const s1 = c.create(k1, epA, epB);
    const copy = c.read(s1);
    c.create(k2, epA, epB);
    assert.deepEqual(gone, [s1]);
    assert.equal(c.evicted, 1);
    assert.equal(c.peekExact(k1), -1);
    const again = c.create(k1, epA, epB); // a second pending flow for k1 (evicts k2's)
    assert.deepEqual(gone, [s1, s1], 'k2 reused the slot');
    copy.state = FlowState.Allowed;
    const s = c.insert(copy); // replaces `again`, the same key
    assert.deepEqual(gone, [s1, s1, again]);
    assert.equal(c.lookup(k1, epA, epB), s);
    assert.equal(c.state(s), FlowState.Allowed);
    assert.equal(c.size, 1);
  });

  it('rejects bad options with the option named', () => {
    assert.throws(() => new FlowCache({ max: 0 }), /FlowCache: max must be a positive integer below 2\^30, got 0/);
    assert.throws(() => new FlowCache({ udpIdleMs: -1 }), /FlowCache: udpIdleMs must be a positive number of ms below 2\^31, got -1/);
    assert.throws(() => new FlowCache({ initialSlots: 1 }), /FlowCache: initialSlots must be an integer >= 2, got 1/);
    assert.throws(() => new FlowCache({ maxChain: 1.5 }), /FlowCache: maxChain must be a positive integer/);
  });
});

describe('FlowCache table (struct of arrays)', () => {
  const C = ip4('192.168.7.7');

  it('grows its columns by doubling up to max + 1 slots, every flow and all its fields intact after each growth', () => {
    const c = new FlowCache({ max: 100, initialSlots: 4 });
    assert.equal(c.capacity, 4);
    const keys: FlowKey[] = [];
    const caps: number[] = [];
    const epC = endpoint('x', 'c', '10.0.1.12');
    const fields = (s: number): unknown[] => {
      const e = c.read(s);
      return [e.srcPort, e.state, e.from, e.to, e.tcp, e.expiresAt, e.egressPolicy, e.egressRule, e.fwdPackets, e.fwdBytes, e.revPackets, e.revBytes, c.referenced(s)];
    };
    const expected = (i: number): unknown[] => [1000 + i, i % 3 === 0 ? FlowState.Denied : FlowState.Allowed, epA, i % 2 === 0 ? epB : epC,
      TcpBits.SeenReverse, 600_000 + i, `P/x/${i}`, i, 1, 60 + i, 1, 40 + i, i % 5 === 0];
    for (let i = 0; i < 100; i++) {
      c.setNow(i);
      const k = tcpKey(A, B, 1000 + i, 80);
      keys.push(k);
      const s = settle(c, k, i % 3 === 0 ? FlowState.Denied : FlowState.Allowed, epA, i % 2 === 0 ? epB : epC);
      c.setVerdict(s, 1, Decision.RuleAllow, `P/x/${i}`, i, Decision.NotChecked, undefined, -1);
      c.account(s, false, 60 + i, TCP.SYN);
      c.account(s, true, 40 + i, TCP.SYN | TCP.ACK);
      if (i % 5 === 0) c.lookup(k, epA, i % 2 === 0 ? epB : epC);
      if (caps[caps.length - 1] !== c.capacity) caps.push(c.capacity);
      for (let j = 0; j <= i; j++) assert.deepEqual(fields(c.peekExact(keys[j])), expected(j), `flow ${j} at capacity ${c.capacity}`);
    }
    assert.deepEqual(caps, [4, 8, 16, 32, 64, 101]);
    assert.equal(c.size, 100);
    settle(c, tcpKey(A, B, 5000, 80), FlowState.Allowed);
    assert.equal(c.capacity, 101, 'full: evicts instead of growing');
    assert.equal(c.size, 100);
  });

  it('lastSeen is derived from the expiry: exact for open flows, the start of closing for closing TCP, now while pending', () => {
    const c = new FlowCache({ max: 16, tcpOpeningMs: 30_000, tcpEstablishedMs: 600_000, tcpClosingMs: 5000, udpIdleMs: 60_000, otherIdleMs: 20_000 });
    c.setNow(1000);
    const t = c.create(tcpKey(A, B, 1, 80), epA, epB);
    const u = c.create(new FlowKey().setV4(IpProto.UDP, A, B, 1, 53), epA, epB);
    const icmp = new FlowKey().setV4(IpProto.ICMP, A, B, 9, 9);
    icmp.icmpType = 8;
    const i = c.create(icmp, epA, epB);
    c.setNow(1500);
    assert.equal(c.lastSeen(t), 1500, 'pending: seen now');
    assert.equal(c.read(t).lastSeen, 1500);
    for (const s of [t, u, i]) {
      c.setState(s, FlowState.Allowed);
      c.refreshExpiry(s); // the verdict counts as seeing the flow
    }
    assert.deepEqual([t, u, i].map((s) => c.lastSeen(s)), [1500, 1500, 1500]);
    c.setNow(2000);
    c.account(t, false, 60, TCP.SYN);
    c.account(u, false, 60, 0);
    c.setNow(3000);
    assert.deepEqual([t, u, i].map((s) => c.lastSeen(s)), [2000, 2000, 1500], 'opening TCP, UDP, ICMP');
    c.account(t, true, 60, TCP.SYN | TCP.ACK); // established: another idle timeout, same answer
    c.account(i, true, 60, 0);
    c.setNow(4000);
    assert.deepEqual([t, i].map((s) => c.lastSeen(s)), [3000, 3000]);
    assert.equal(c.read(t).lastSeen, 3000);
    c.account(t, false, 60, TCP.FIN | TCP.ACK);
    c.setNow(5000);
    c.account(t, true, 60, TCP.FIN | TCP.ACK);
    assert.equal(c.lastSeen(t), 5000, 'closing from the second FIN');
    c.setNow(6000);
    c.account(t, false, 60, TCP.ACK);
    assert.equal(c.lastSeen(t), 5000, 'closing: the expiry is not extended, so neither is lastSeen (the documented approximation)');
    // A copy read out and inserted again keeps it (through its expiry).
    const copy = c.read(u);
    const d = new FlowCache({ max: 16, udpIdleMs: 60_000 });
    d.setNow(9000);
    assert.equal(d.lastSeen(d.insert(copy)), 2000);
    // And across a rebase of the clock.
    c.setNow(2 ** 31 + 1000);
    c.account(u, false, 60, 0);
    c.setNow(2 ** 31 + 50_000);
    assert.equal(c.lastSeen(u), 2 ** 31 + 1000);
  });

  it('a full chain gives up a flow not hit since the hand passed, else the one expiring first; never a pending one', () => {
    const c = new FlowCache({ max: 16, maxChain: 3, hash: () => 9, udpIdleMs: 60_000 });
    const keys = [1, 2, 3, 4, 5, 6].map((p) => new FlowKey().setV4(IpProto.UDP, A, B, p, 53));
    const s = keys.slice(0, 3).map((k, n) => {
      c.setNow(n * 1000);
      return settle(c, k, FlowState.Allowed);
    });
    c.lookup(keys[0], epA, epB);
    c.lookup(keys[2], epA, epB);
    // keys[1] is the only one not hit: it goes, though keys[0] expires sooner.
    const s3 = settle(c, keys[3], FlowState.Allowed);
    assert.equal(c.peekExact(keys[1]), -1);
    assert.equal(s3, s[1], 'the new flow took the slot given up');
    assert.equal(c.chainFull, 1);
    c.lookup(keys[3], epA, epB);
    // All hit now: the one expiring first (keys[0], settled at 0) goes.
    settle(c, keys[4], FlowState.Allowed);
    assert.equal(c.peekExact(keys[0]), -1);
    assert.ok(c.peekExact(keys[2]) > 0 && c.peekExact(keys[3]) === s3);
    // Pending flows are not candidates, whatever their bit.
    const d = new FlowCache({ max: 16, maxChain: 2, hash: () => 9 });
    const p = d.create(keys[0], epA, epB);
    const q = settle(d, keys[1], FlowState.Allowed);
    d.lookup(keys[1], epA, epB);
    assert.equal(d.referenced(p), false);
    settle(d, keys[2], FlowState.Allowed);
    assert.equal(d.peekExact(keys[1]), -1, 'the settled flow went, hit or not');
    assert.equal(d.peekExact(keys[0]), p);
    assert.equal(d.create(keys[1], epA, epB), q, 'in its slot');
  });

  it('counts chains as distinct hash values, and frees slots for reuse with nothing left over', () => {
    const c = new FlowCache({ max: 16, hash: (k) => k.srcPort & 1 });
    const slots = [1, 2, 3, 4].map((p) => settle(c, tcpKey(A, B, p, 80), FlowState.Allowed));
    assert.equal(c.chains, 2);
    const s = slots[1];
    c.setVerdict(s, 7, Decision.RuleAllow, 'P/x/y', 3, Decision.NoPolicy, undefined, -1);
    c.account(s, false, 100, 0);
    c.remove(s);
    assert.equal(c.linked(s), false);
    assert.equal(c.chains, 2);
    c.remove(slots[3]);
    assert.equal(c.chains, 1, 'no flow with an even port is left');
    assert.equal(c.verdicts.size, 1, 'the removed flow gave its verdict back (only the permanent id 0 is left)');
    const again = c.create(tcpKey(A, C, 9, 80), epA, undefined);
    assert.ok(again === slots[3] || again === s, 'a freed slot is reused');
    const e = c.read(again);
    assert.deepEqual([e.state, e.fwdPackets, e.fwdBytes, e.generation, e.egress, e.egressPolicy, e.to, e.dst0],
      [FlowState.Pending, 0, 0, 0, Decision.NotChecked, undefined, undefined, C]);
    assert.equal(c.lookup(tcpKey(A, B, 2, 80), epA, epB), -1, 'the old key misses');
  });

  it('IPv6 keys: both directions, key read back, side-table rows reused', () => {
    const c = new FlowCache({ max: 16 });
    const a6 = Buffer.from('fd000001000000000000000000000010', 'hex');
    const b6 = Buffer.from('fd000001000000000000000000000011', 'hex');
    const k = new FlowKey().setV6(IpProto.TCP, a6, 0, b6, 0, 40000, 443);
    const k4 = new FlowKey().setV4(IpProto.TCP, k.src0, k.dst0, 40000, 443); // same first words, IPv4
    const s = settle(c, k, FlowState.Allowed);
    assert.equal(c.lookup(k, epA, epB), s);
    assert.equal(c.lookup(new FlowKey().copyFrom(k).reverse(), epB, epA), s);
    assert.equal(c.reverse, true);
    assert.equal(c.lookup(k4, epA, epB), -1, 'an IPv4 key with the same first words is another flow');
    assert.ok(c.readKey(s, new FlowKey()).equals(k));
    const other = new FlowKey().copyFrom(k);
    other.dst3 ^= 1;
    assert.equal(c.lookup(other, epA, epB), -1);
    c.remove(s);
    const s2 = settle(c, other, FlowState.Allowed);
    assert.ok(c.readKey(s2, new FlowKey()).equals(other));
    assert.equal(c.peekExact(k), -1);
  });

  it('relative times survive a rebase of the clock (past 2^31 ms)', () => {
    const c = new FlowCache({ max: 16, udpIdleMs: 60_000 });
    const k = new FlowKey().setV4(IpProto.UDP, A, B, 1, 53);
    c.setNow(2 ** 31 - 10_000);
    const s = settle(c, k, FlowState.Allowed);
    c.account(s, false, 60, 0);
    c.setNow(2 ** 31 + 49_000);
    assert.equal(c.expiresAt(s), 2 ** 31 + 50_000);
    assert.equal(c.lookup(k, epA, epB), s);
    c.setNow(2 ** 31 + 50_000);
    assert.equal(c.lookup(k, epA, epB), -1);
  });

  it('counters stay exact past 2^32 bytes', () => {
    const c = new FlowCache({ max: 16 });
    const s = settle(c, tcpKey(A, B, 1, 80), FlowState.Allowed);
    for (let i = 0; i < 70_000; i++) c.account(s, true, 65_535, TCP.ACK);
    c.addCounts(s, false, 3, 2 ** 33);
    c.addCounts(s, true, 5, 2 ** 32 + 7); // e.g. 5 s of a fast-pathed 10 Gbit/s flow: more than 2^32 bytes at once
    const e = c.read(s);
    assert.deepEqual([e.revPackets, e.revBytes, e.fwdPackets, e.fwdBytes], [70_005, 70_000 * 65_535 + 2 ** 32 + 7, 3, 2 ** 33]);
    c.remove(s);
    const s2 = settle(c, tcpKey(A, B, 2, 80), FlowState.Allowed);
    assert.equal(s2, s);
    assert.equal(c.read(s2).revBytes, 0, 'the carry went with the flow');
  });

  it('lookups and counting on hits allocate nothing', async () => {
    const c = new FlowCache({ max: 4096 });
    const keys = Array.from({ length: 1024 }, (_, i) => {
      const k = i % 4 === 0
        ? new FlowKey().setV6(IpProto.UDP, Buffer.alloc(16, i & 0xff), 0, Buffer.alloc(16, 0xfe), 0, 1000 + i, 53)
        : tcpKey(A, B, 1000 + i, 80);
      settle(c, k, FlowState.Allowed);
      return k;
    });
    const rev = keys.map((k) => new FlowKey().copyFrom(k).reverse());
    let sink = 0;
    const run = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const j = i & 1023;
        const back = (i & 1024) !== 0;
        const s = back ? c.lookup(rev[j], epB, epA) : c.lookup(keys[j], epA, epB);
        c.account(s, c.reverse, 1500, TCP.ACK);
        sink ^= s;
      }
    };
    const gcs = await gcsDuring(run, 2_000_000);
    assert.ok(sink !== 0.5); // keep `sink` alive
    assert.equal(gcs, 0, `${gcs} garbage collections during 2,000,000 lookups: something allocates per packet`);
  });

  it('behaves like a CLOCK model: slots, reference bits, hand, evictions (fast-check)', () => {
    // Addresses A, B (local endpoints epA, epB) and C (remote); endpoints follow the addresses,
    // so a reply's endpoints are the flow's swapped, as on the wire.
    const addrs = [A, B, C];
    const eps = [epA, epB, undefined];
    const keyArb = fc.record({
      v6: fc.boolean(), src: fc.integer({ min: 0, max: 2 }), d: fc.integer({ min: 1, max: 2 }), port: fc.integer({ min: 1, max: 2 }),
    }).map(({ v6, src, d, port }) => ({ v6, src, dst: (src + d) % 3, port, back: false }));
    /** back: the reply direction (ports swapped). */
    type K = { v6: boolean; src: number; dst: number; port: number; back: boolean };
    const toKey = (k: K): FlowKey => {
      const [sp, dp] = k.back ? [80, 1000 + k.port] : [1000 + k.port, 80];
      if (!k.v6) return tcpKey(addrs[k.src], addrs[k.dst], sp, dp);
      const w = (i: number) => { const b = Buffer.alloc(16, 0xfd); b.writeInt32BE(addrs[i], 12); return b; };
      return new FlowKey().setV6(IpProto.TCP, w(k.src), 0, w(k.dst), 0, sp, dp);
    };
    const name = (k: FlowKey): string => k.toString();
    // Keys at random, or (pick) the key of the i-th cached flow, or its reverse, so that
    // settling and hitting cached flows is common.
    const target = fc.record({ k: keyArb, pick: fc.boolean(), i: fc.nat(), rev: fc.boolean() });
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ t: fc.constant('create' as const), at: target }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('settle' as const), at: target, st: fc.constantFrom(FlowState.Allowed, FlowState.Denied, FlowState.Revoked) }) },
      { weight: 4, arbitrary: fc.record({ t: fc.constant('lookup' as const), at: target }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), at: target }) },
    );
    type Flow = { name: string; k: K; st: FlowState; ref: boolean };
    let evictions = 0, secondChances = 0;
    fc.assert(fc.property(fc.array(op, { minLength: 10, maxLength: 80, size: 'max' }), fc.boolean(), fc.integer({ min: 1, max: 5 }), (ops, collide, max) => {
      const c = new FlowCache({ max, maxChain: 64, ...(collide ? { hash: () => 5 } : {}) });
      // The model: what each slot holds, the free slots (a stack), slots ever used, the hand.
      const slots = new Map<number, Flow>();
      const free: number[] = [];
      let used = 1, hand = 1;
      const slotOf = (n: string): number => { for (const [s, f] of slots) if (f.name === n) return s; return -1; };
      const unlink = (s: number): void => { slots.delete(s); free.push(s); };
      /** Classic CLOCK over the slots from the hand: pending flows are passed over; a set bit is cleared and passed. */
      const evict = (): void => {
        const order = [...Array(used - 1).keys()].map((i) => 1 + (hand - 1 + i) % (used - 1));
        const settled = order.filter((s) => slots.get(s)!.st !== FlowState.Pending);
        const firstClear = settled.findIndex((s) => !slots.get(s)!.ref);
        evictions++;
        if (firstClear !== 0 && settled.length > 0) secondChances++;
        let victim: number;
        if (firstClear >= 0) {
          for (const s of settled.slice(0, firstClear)) slots.get(s)!.ref = false;
          victim = settled[firstClear];
        } else if (settled.length > 0) {
          for (const s of settled) slots.get(s)!.ref = false; // a whole turn clears them all
          victim = settled[0];
        } else {
          victim = order[0];
        }
        unlink(victim);
        hand = victim + 1 === used ? 1 : victim + 1;
      };
      for (const o of ops) {
        let ok0 = o.at.k;
        if (o.at.pick && slots.size > 0) {
          const f = [...slots.values()][o.at.i % slots.size].k;
          ok0 = o.at.rev ? { v6: f.v6, src: f.dst, dst: f.src, port: f.port, back: !f.back } : f;
        }
        const k = toKey(ok0), n = name(k);
        const from = eps[ok0.src], to = eps[ok0.dst];
        switch (o.t) {
          case 'create': {
            const old = slotOf(n);
            if (old >= 0) unlink(old);
            if (slots.size >= max) evict();
            const s = free.length > 0 ? free.pop()! : used++;
            slots.set(s, { name: n, k: ok0, st: FlowState.Pending, ref: false });
            assert.equal(c.create(k, from, to), s, 'the slot');
            break;
          }
          case 'settle': {
            const s = slotOf(n);
            if (s >= 0) {
              slots.get(s)!.st = o.st; // the bit stays
              c.setState(s, o.st);
            }
            break;
          }
          case 'remove': {
            const s = slotOf(n);
            if (s >= 0) {
              unlink(s);
              c.remove(s);
            } else {
              assert.equal(c.peekExact(k), -1);
            }
            break;
          }
          case 'lookup': {
            const r = new FlowKey().copyFrom(k).reverse(), rn = name(r);
            const fs = slotOf(n), rs = slotOf(rn);
            const ok: number[] = [];
            if (fs >= 0) ok.push(fs);
            const rst = rs >= 0 ? slots.get(rs)!.st : undefined;
            if (rst === FlowState.Allowed || rst === FlowState.Revoked) ok.push(rs);
            const s = c.lookup(k, from, to);
            if (ok.length === 0) {
              assert.equal(s, -1);
              break;
            }
            assert.ok(ok.includes(s), `lookup ${n}: slot ${s}, expected one of ${ok.join(', ')}`);
            assert.equal(c.reverse, s !== fs);
            slots.get(s)!.ref = true;
            break;
          }
        }
        assert.equal(c.size, slots.size);
        for (let s = 1; s < used; s++) {
          const f = slots.get(s);
          assert.equal(c.linked(s), f !== undefined, `slot ${s} linked`);
          if (f === undefined) continue;
          assert.equal(name(c.readKey(s, new FlowKey())), f.name, `slot ${s} key`);
          assert.equal(c.state(s), f.st, `slot ${s} state`);
          assert.equal(c.referenced(s), f.ref, `slot ${s} reference bit`);
        }
        const back = [...Array(used - 1).keys()].map((i) => 1 + (hand - 2 - i + 2 * (used - 1)) % (used - 1)).filter((s) => slots.has(s));
        const dump = [...back.filter((s) => slots.get(s)!.ref), ...back.filter((s) => !slots.get(s)!.ref)];
        assert.deepEqual([...c.dumpSlots()], dump, 'referenced first, each part backwards from the hand');
        assert.deepEqual([...c.slots()], [...c.dumpSlots()]);
      }
    }), { numRuns: 500 });
    assert.ok(evictions > 1000 && secondChances > 100, `the runs exercised eviction: ${evictions} evictions, ${secondChances} passing a hit flow`);
  });
});

describe('VerdictTable and EndpointIndex (what a flow names by number)', () => {
  it('interns verdict tuples by value, reference-counted; ids are reused once free', () => {
    const t = new VerdictTable();
    const a = t.ref(1, Decision.RuleAllow, 'P/x/a', 0, Decision.NoPolicy, undefined, -1);
    assert.equal(t.ref(1, Decision.RuleAllow, 'P/x/a', 0, Decision.NoPolicy, undefined, -1), a);
    const others = [
      t.ref(2, Decision.RuleAllow, 'P/x/a', 0, Decision.NoPolicy, undefined, -1), // another generation
      t.ref(1, Decision.RuleAllow, '', 0, Decision.NoPolicy, undefined, -1), // '' is not undefined
      t.ref(1, Decision.RuleAllow, undefined, 0, Decision.NoPolicy, 'P/x/a', -1), // the policy on the other side
      t.ref(1, Decision.RuleAllow, 'P/x/a', 1, Decision.NoPolicy, undefined, -1),
    ];
    assert.equal(new Set([a, ...others]).size, 5);
    assert.deepEqual(t.get(others[2]), { generation: 1, egress: Decision.RuleAllow, egressPolicy: undefined, egressRule: 0,
      ingress: Decision.NoPolicy, ingressPolicy: 'P/x/a', ingressRule: -1 });
    assert.equal(t.size, 6);
    t.unref(a);
    assert.equal(t.size, 6, 'still named once');
    t.unref(a);
    assert.equal(t.size, 5);
    const b = t.ref(9, Decision.DefaultDeny, undefined, -1, Decision.DefaultDeny, undefined, -1);
    assert.equal(b, a, 'the freed id is reused');
    assert.equal(t.ref(0, Decision.NotChecked, undefined, -1, Decision.NotChecked, undefined, -1), NO_VERDICT);
  });

  it('gives endpoints small indexes while flows name them, 0 for none', () => {
    const x = new EndpointIndex();
    const i = x.ref(epA), j = x.ref(epB);
    assert.deepEqual([x.ref(undefined), x.ref(epA), x.at(i), x.at(0)], [0, i, epA, undefined]);
    assert.notEqual(i, j);
    x.unref(i);
    assert.equal(x.at(i), epA);
    x.unref(i);
    assert.equal(x.at(i), undefined);
    assert.equal(x.size, 1);
    assert.equal(x.ref(endpoint('x', 'c', '10.0.1.12')), i, 'the freed index is reused');
  });
});
