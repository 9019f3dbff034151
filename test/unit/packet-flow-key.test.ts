import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Drop } from '../../src/packet/drop.js';
import { FLOW_KEY_WORDS, FlowKey } from '../../src/packet/flow-key.js';
import { FlowKeyParser, Fragment } from '../../src/packet/flow-key-parser.js';
import {
  TCP, buildIpv4, buildIpv6, icmp4Echo, icmp6Echo, ip4Int, ip6Bytes, tcp4, tcp6, udp4, udp6,
} from './packet-fixtures.js';

const parser = new FlowKeyParser();

function keyOf(pkt: Buffer, off = 0): FlowKey {
  const k = new FlowKey();
  assert.equal(parser.parse(pkt, off, pkt.length - off, k), Drop.None);
  return k;
}

test('flow key: IPv4 TCP/UDP from real packets', () => {
  const buf = Buffer.concat([Buffer.alloc(5), tcp4('10.244.1.2', '10.244.2.3', 40001, 80, TCP.SYN | TCP.ACK)]);
  const k = keyOf(buf, 5);
  assert.deepEqual([k.family, k.protocol, k.src0, k.dst0, k.srcPort, k.dstPort, k.src1, k.dst3], [4, 6, ip4Int('10.244.1.2'), ip4Int('10.244.2.3'), 40001, 80, 0, 0]);
  assert.equal(parser.tcpFlags, TCP.SYN | TCP.ACK);
  assert.equal(parser.family, 4);
  assert.equal(parser.l4Offset, 25);
  assert.equal(parser.l4Length, 20);
  assert.equal(parser.ipLength, 40);
  assert.equal(parser.fragment, Fragment.None);
  assert.equal(k.toString(), 'tcp 10.244.1.2:40001 > 10.244.2.3:80');
  const u = keyOf(udp4('192.168.1.1', '10.0.0.1', 53, 1053));
  assert.deepEqual([u.protocol, u.srcPort, u.dstPort], [17, 53, 1053]);
  assert.equal(parser.tcpFlags, 0);
});

test('flow key: IPv6 with extension headers', () => {
  const pkt = buildIpv6({ src: 'fd00:10:244:1::7', dst: 'fd00:10:244:2::9', ext: [{ type: 0 }, { type: 60 }] }, { kind: 'udp', sport: 1111, dport: 2222 });
  const k = keyOf(pkt);
  const s = ip6Bytes('fd00:10:244:1::7'), d = ip6Bytes('fd00:10:244:2::9');
  assert.deepEqual([k.family, k.protocol, k.srcPort, k.dstPort], [6, 17, 1111, 2222]);
  assert.deepEqual([k.src0, k.src1, k.src2, k.src3], [0, 4, 8, 12].map((i) => s.readInt32BE(i)));
  assert.deepEqual([k.dst0, k.dst1, k.dst2, k.dst3], [0, 4, 8, 12].map((i) => d.readInt32BE(i)));
  assert.equal(parser.l4Offset, 56);
  assert.equal(k.toString(), 'udp [fd00:10:244:1::7]:1111 > [fd00:10:244:2::9]:2222');
  const set = new FlowKey().setV6(17, s, 0, d, 0, 1111, 2222);
  assert.ok(set.equals(k));
});

test('flow key: ICMP echo uses the identifier as both ports and reverses into the reply', () => {
  const req = keyOf(icmp4Echo('10.0.0.1', '10.0.0.2', 77, 1));
  const rep = keyOf(icmp4Echo('10.0.0.2', '10.0.0.1', 77, 1, true));
  assert.deepEqual([req.srcPort, req.dstPort, req.icmpType, req.icmpCode], [77, 77, 8, 0]);
  assert.equal(parser.icmpError, false);
  assert.ok(!req.equals(rep));
  assert.ok(new FlowKey().copyFrom(req).reverse().equals(rep));
  assert.equal(req.hashSymmetric(), rep.hashSymmetric());
  assert.notEqual(req.hash(), rep.hash());
  assert.equal(req.toString(), 'icmp 10.0.0.1 > 10.0.0.2 type 8/0 id 77');
  const req6 = keyOf(icmp6Echo('fd00::1', 'fd00::2', 5, 1));
  const rep6 = keyOf(icmp6Echo('fd00::2', 'fd00::1', 5, 1, true));
  assert.ok(new FlowKey().copyFrom(req6).reverse().equals(rep6));
  assert.equal(req6.hashSymmetric(), rep6.hashSymmetric());
});

test('flow key: ICMP errors carry type/code, no ports, and are flagged', () => {
  const inner = udp4('10.0.0.2', '10.0.0.1', 5000, 53);
  const err = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'icmp', type: 3, code: 3 }, inner.subarray(0, 28));
  const k = keyOf(err);
  assert.deepEqual([k.protocol, k.icmpType, k.icmpCode, k.srcPort, k.dstPort], [1, 3, 3, 0, 0]);
  assert.equal(parser.icmpError, true);
  const e6 = buildIpv6({ src: 'fd00::1', dst: 'fd00::2' }, { kind: 'icmp', type: 1, code: 4 }, Buffer.alloc(40));
  const k6 = keyOf(e6);
  assert.deepEqual([k6.protocol, k6.icmpType, k6.icmpCode], [58, 1, 4]);
  assert.equal(parser.icmpError, true);
  keyOf(buildIpv6({ src: 'fd00::1', dst: 'fd00::2' }, { kind: 'icmp', type: 135 }, Buffer.alloc(16)));
  assert.equal(parser.icmpError, false, 'neighbour solicitation is informational');
});

test('flow key: fragments', () => {
  const first = keyOf(buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', mf: true }, { kind: 'udp', sport: 7, dport: 8 }, Buffer.alloc(32)));
  assert.equal(parser.fragment, Fragment.First);
  assert.deepEqual([first.srcPort, first.dstPort], [7, 8]);
  const later = keyOf(buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', fragOffset: 40 }, { kind: 'raw', proto: 17 }, Buffer.alloc(3)));
  assert.equal(parser.fragment, Fragment.NonFirst);
  assert.deepEqual([later.protocol, later.srcPort, later.dstPort], [17, 0, 0]);
  const later6 = keyOf(buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 44, offset: 8 }] }, { kind: 'raw', proto: 6 }, Buffer.alloc(3)));
  assert.equal(parser.fragment, Fragment.NonFirst);
  assert.deepEqual([later6.protocol, later6.srcPort, later6.dstPort], [6, 0, 0]);
});

test('flow key: SCTP ports, unknown protocols, ICMP in the wrong family', () => {
  const sctp = keyOf(buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'raw', proto: 132 }, Buffer.from([0, 9, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0])));
  assert.deepEqual([sctp.protocol, sctp.srcPort, sctp.dstPort], [132, 9, 10]);
  const gre = keyOf(buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'raw', proto: 47 }, Buffer.alloc(4)));
  assert.deepEqual([gre.protocol, gre.srcPort, gre.dstPort], [47, 0, 0]);
  const icmp6in4 = keyOf(buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'raw', proto: 58 }, Buffer.alloc(2)));
  assert.deepEqual([icmp6in4.protocol, icmp6in4.icmpType], [58, 0]);
});

test('flow key parser: malformed packets give the right drop reason', () => {
  const k = new FlowKey();
  const tcp = tcp4('10.0.0.1', '10.0.0.2', 1, 2);
  const badDoff = Buffer.from(tcp); badDoff[32] = 0x40;
  const shortUdp = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'raw', proto: 17 }, Buffer.alloc(7));
  const shortIcmp = buildIpv6({ src: 'fd00::1', dst: 'fd00::2' }, { kind: 'raw', proto: 58 }, Buffer.alloc(4));
  const shortSctp = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'raw', proto: 132 }, Buffer.alloc(11));
  const cases: [string, Buffer, number, Drop][] = [
    ['empty', tcp, 0, Drop.Truncated],
    ['version 5', Buffer.from([0x55, 0, 0, 0]), 4, Drop.BadVersion],
    ['ipv4 truncated', tcp, 12, Drop.Truncated],
    ['tcp data offset 4', badDoff, badDoff.length, Drop.BadL4],
    ['udp header cut', shortUdp, shortUdp.length, Drop.BadL4],
    ['icmpv6 header cut', shortIcmp, shortIcmp.length, Drop.BadL4],
    ['sctp header cut', shortSctp, shortSctp.length, Drop.BadL4],
    ['ipv6 payload past the end', tcp6('fd00::1', 'fd00::2', 1, 2), 59, Drop.BadTotalLength],
  ];
  for (const [name, buf, len, want] of cases) assert.equal(parser.parse(buf, 0, len, k), want, name);
});

const v4KeyArb = fc.record({
  proto: fc.constantFrom(6, 17, 132), src: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), dst: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  sp: fc.nat(65535), dp: fc.nat(65535),
}).map(({ proto, src, dst, sp, dp }) => new FlowKey().setV4(proto, src, dst, sp, dp));
const v6KeyArb = fc.tuple(fc.constantFrom(6, 17), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(65535), fc.nat(65535), fc.boolean())
  .map(([proto, a, sp, dp, same]) => {
    const b = Buffer.from(a);
    if (same) b.copy(b, 16, 0, 16); // same address both ways: ordering falls back to ports
    return new FlowKey().setV6(proto, b, 0, b, 16, sp, dp);
  });
const icmpKeyArb = fc.tuple(fc.constantFrom<[number, number]>([4, 8], [4, 0], [4, 13], [4, 3], [6, 128], [6, 129], [6, 1]), fc.nat(65535), fc.integer(), fc.integer())
  .map(([[fam, type], id, s, d]) => {
    const k = fam === 4 ? new FlowKey().setV4(1, s, d, 0, 0) : new FlowKey().setV6(58, Buffer.alloc(16, s & 0xff), 0, Buffer.alloc(16, d & 0xff), 0, 0, 0);
    k.icmpType = type;
    if (type === 8 || type === 0 || type === 13 || type === 128 || type === 129) k.srcPort = k.dstPort = id;
    return k;
  });
const keyArb = fc.oneof(v4KeyArb, v6KeyArb, icmpKeyArb);

test('flow key property: symmetric hash is direction-independent; reverse is an involution', () => {
  fc.assert(fc.property(keyArb, (k) => {
    const r = new FlowKey().copyFrom(k).reverse();
    assert.equal(r.hashSymmetric(), k.hashSymmetric());
    assert.ok(new FlowKey().copyFrom(r).reverse().equals(k));
    assert.ok(new FlowKey().copyFrom(k).equals(k));
    assert.equal(new FlowKey().copyFrom(k).hash(), k.hash());
    assert.ok(Number.isInteger(k.hash()) && k.hash() === (k.hash() | 0), 'hash is an int32');
    const words = new Int32Array(FLOW_KEY_WORDS + 2);
    k.writeTo(words, 2);
    assert.ok(new FlowKey().readFrom(words, 2).equals(k));
  }), { numRuns: 3000 });
});

test('flow key property: hash separates keys that differ', () => {
  // Not a guarantee for any pair, but a collision among these few structured neighbours would mean a weak mix.
  const base = new FlowKey().setV4(6, ip4Int('10.0.0.1'), ip4Int('10.0.0.2'), 1000, 80);
  const variants = [
    new FlowKey().setV4(17, ip4Int('10.0.0.1'), ip4Int('10.0.0.2'), 1000, 80),
    new FlowKey().setV4(6, ip4Int('10.0.0.2'), ip4Int('10.0.0.1'), 1000, 80),
    new FlowKey().setV4(6, ip4Int('10.0.0.1'), ip4Int('10.0.0.2'), 1001, 80),
    new FlowKey().setV4(6, ip4Int('10.0.0.1'), ip4Int('10.0.0.2'), 80, 1000),
    new FlowKey().copyFrom(base).reverse(),
  ];
  for (const v of variants) {
    assert.ok(!v.equals(base));
    assert.notEqual(v.hash(), base.hash(), v.toString());
  }
  // Distribution: 65536 consecutive source ports fill 4096 buckets evenly.
  const buckets = new Uint32Array(4096);
  const k = new FlowKey().copyFrom(base);
  for (let p = 0; p < 65536; p++) { k.srcPort = p; buckets[k.hash() & 4095]++; }
  assert.ok(Math.max(...buckets) < 40, `max bucket ${Math.max(...buckets)} (mean 16)`);
});

test('flow key parser fuzz: random bytes never throw; results stay inside the packet', () => {
  const k = new FlowKey();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(0x40, 0x45, 0x60, 0x46), fc.boolean(), (bytes, first, fixLen) => {
    const buf = Buffer.from(bytes);
    if (buf.length > 0) buf[0] = first;
    if (fixLen && buf.length >= 40) {
      if (first === 0x60) buf.writeUInt16BE(buf.length - 40, 4); else buf.writeUInt16BE(buf.length, 2);
    }
    const r = parser.parse(buf, 0, buf.length, k);
    assert.ok(Number.isInteger(r) && r >= 0 && r <= Drop.BadL4);
    if (r === Drop.None) {
      assert.ok(parser.l4Offset >= 0 && parser.l4Offset + parser.l4Length <= buf.length);
      assert.ok(k.family === 4 || k.family === 6);
      k.hash(); k.hashSymmetric(); k.toString();
    }
  }), { numRuns: 5000 });
});

test('flow key parser: real packets of every kind parse', () => {
  const pkts = [tcp4('1.1.1.1', '2.2.2.2', 1, 2), udp4('1.1.1.1', '2.2.2.2', 3, 4), icmp4Echo('1.1.1.1', '2.2.2.2', 1, 1),
    tcp6('::1', '::2', 1, 2), udp6('::1', '::2', 3, 4), icmp6Echo('::1', '::2', 9, 9)];
  for (const p of pkts) keyOf(p);
});

test('flow key parser: parseQuoted reads cut-short packets quoted in ICMP errors', () => {
  const k = new FlowKey();
  const t = tcp4('10.0.0.1', '10.0.0.2', 1234, 80, TCP.SYN, Buffer.alloc(100));
  assert.equal(parser.parseQuoted(t, 0, 28, k), Drop.None, 'header + 8 bytes');
  assert.equal(k.toString(), 'tcp 10.0.0.1:1234 > 10.0.0.2:80');
  assert.equal(parser.parseQuoted(t, 0, 24, k), Drop.None, 'ports only');
  assert.equal(parser.parseQuoted(t, 0, 23, k), Drop.BadL4, 'not even the ports');
  assert.equal(parser.parseQuoted(t, 0, 19, k), Drop.Truncated);
  const badIhl = Buffer.from(t); badIhl[0] = 0x4f;
  assert.equal(parser.parseQuoted(badIhl, 0, 28, k), Drop.BadHeaderLength);
  const e = icmp4Echo('10.0.0.1', '10.0.0.2', 42, 1, false, Buffer.alloc(50));
  assert.equal(parser.parseQuoted(e, 0, 28, k), Drop.None);
  assert.deepEqual([k.icmpType, k.srcPort, k.dstPort], [8, 42, 42]);
  const frag = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', fragOffset: 80 }, { kind: 'raw', proto: 6 }, Buffer.alloc(40));
  assert.equal(parser.parseQuoted(frag, 0, 28, k), Drop.None);
  assert.deepEqual([k.protocol, k.srcPort], [6, 0]);
  const u6 = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 0 }, { type: 43, len: 16 }] }, { kind: 'udp', sport: 7, dport: 9 }, Buffer.alloc(1300));
  assert.equal(parser.parseQuoted(u6, 0, 40 + 24 + 8, k), Drop.None);
  assert.deepEqual([k.family, k.protocol, k.srcPort, k.dstPort], [6, 17, 7, 9]);
  assert.equal(parser.parseQuoted(u6, 0, 40 + 20, k), Drop.BadExtHeader, 'cut inside the extension chain');
});

test('flow key parser fuzz: parseQuoted never throws', () => {
  const k = new FlowKey();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 90 }), fc.constantFrom(0x45, 0x46, 0x60), (bytes, first) => {
    const buf = Buffer.from(bytes);
    if (buf.length > 0) buf[0] = first;
    const r = parser.parseQuoted(buf, 0, buf.length, k);
    assert.ok(Number.isInteger(r) && r >= 0 && r <= Drop.BadL4);
  }), { numRuns: 3000 });
});
