import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Drop } from '../../src/packet/drop.js';
import { FlowKey } from '../../src/packet/flow-key.js';
import { FlowKeyParser } from '../../src/packet/flow-key-parser.js';
import { IcmpView, Icmp4Unreach, Icmp6Unreach } from '../../src/packet/icmp.js';
import {
  IPV6_MIN_MTU, icmp4DestUnreachable, icmp4FragNeeded, icmp4TimeExceeded, icmp6DestUnreachable, icmp6PacketTooBig, icmp6TimeExceeded,
} from '../../src/packet/icmp-errors.js';
import { Ipv4View } from '../../src/packet/ipv4.js';
import { Ipv6View } from '../../src/packet/ipv6.js';
import {
  buildIpv4, buildIpv6, icmp4Echo, icmp6Echo, inetSum, ip4Int, ip6Bytes, ipv4HeaderChecksumOk, l4ChecksumOk, tcp4, tcp6, udp4, udp6,
} from './packet-fixtures.js';

const ROUTER4 = ip4Int('10.244.1.0');
const ROUTER6 = ip6Bytes('fd00:10:244:1::');
const v4 = new Ipv4View();
const v6 = new Ipv6View();
const icmp = new IcmpView();

/** Parses an ICMPv4 error and checks everything the receiving stack would check. */
function checkIcmp4(out: Buffer, off: number, len: number, orig: Buffer, type: number, code: number): void {
  assert.ok(len > 0, 'an error was built');
  v4.reset(out, off);
  assert.equal(v4.validate(len), Drop.None);
  assert.equal(v4.totalLength(), len);
  assert.equal(v4.protocol(), 1);
  assert.equal(v4.src(), ROUTER4);
  assert.equal(v4.dst(), orig.readInt32BE(12), 'sent back to the original source');
  assert.ok(ipv4HeaderChecksumOk(out, off), 'IP header checksum');
  assert.equal(inetSum(out, off + 20, len - 20), 0xffff, 'ICMP checksum');
  assert.ok(l4ChecksumOk(out, off));
  icmp.reset(out, off + 20);
  assert.equal(icmp.validate(len - 20), Drop.None);
  assert.equal(icmp.type(), type);
  assert.equal(icmp.code(), code);
  const quoteLen = Math.min(orig.readUInt16BE(2), (orig[0] & 0x0f) * 4 + 8);
  assert.equal(len, 28 + quoteLen);
  assert.deepEqual(out.subarray(off + 28, off + len), orig.subarray(0, quoteLen), 'quote = IP header + 8 bytes');
}

function checkIcmp6(out: Buffer, off: number, len: number, orig: Buffer, type: number, code: number): void {
  assert.ok(len > 0, 'an error was built');
  v6.reset(out, off);
  assert.equal(v6.validate(len), Drop.None);
  assert.equal(v6.totalLength(), len);
  assert.ok(len <= IPV6_MIN_MTU);
  assert.equal(v6.protocol(), 58);
  assert.deepEqual(out.subarray(off + 8, off + 24), ROUTER6);
  assert.deepEqual(out.subarray(off + 24, off + 40), orig.subarray(8, 24), 'sent back to the original source');
  assert.ok(l4ChecksumOk(out, off), 'ICMPv6 checksum incl. pseudo-header');
  icmp.reset(out, off + 40);
  assert.equal(icmp.type(), type);
  assert.equal(icmp.code(), code);
  const quoteLen = Math.min(orig.length, IPV6_MIN_MTU - 48);
  assert.equal(len, 48 + quoteLen);
  assert.deepEqual(out.subarray(off + 48, off + len), orig.subarray(0, quoteLen));
}

test('icmp4: destination unreachable (net, host, admin prohibited) for TCP and UDP', () => {
  const out = Buffer.alloc(200);
  const orig = tcp4('10.244.2.7', '10.9.9.9', 40000, 443, 2, Buffer.alloc(100, 0x61));
  for (const code of [Icmp4Unreach.Net, Icmp4Unreach.Host, Icmp4Unreach.AdminProhibited]) {
    out.fill(0xcc);
    const n = icmp4DestUnreachable(out, 10, orig, 0, orig.length, code, ROUTER4);
    checkIcmp4(out, 10, n, orig, 3, code);
    assert.equal(n, 56);
  }
  const withOpts = buildIpv4({ src: '10.244.2.7', dst: '10.9.9.9', options: Buffer.from([1, 1, 1, 0]) }, { kind: 'udp', sport: 1, dport: 2 }, Buffer.alloc(20));
  const n = icmp4DestUnreachable(out, 0, withOpts, 0, withOpts.length, Icmp4Unreach.Net, ROUTER4);
  checkIcmp4(out, 0, n, withOpts, 3, 0);
  assert.equal(n, 28 + 24 + 8);
  const tiny = buildIpv4({ src: '10.244.2.7', dst: '10.9.9.9' }, { kind: 'raw', proto: 47 }, Buffer.alloc(3));
  const m = icmp4DestUnreachable(out, 0, tiny, 0, tiny.length, Icmp4Unreach.Host, ROUTER4);
  checkIcmp4(out, 0, m, tiny, 3, 1);
  assert.equal(m, 28 + 23, 'quote is the whole packet when shorter than header + 8');
});

test('icmp4: fragmentation needed carries the next-hop MTU; time exceeded', () => {
  const out = Buffer.alloc(100);
  const orig = udp4('10.244.2.7', '10.244.3.1', 5000, 6000, Buffer.alloc(1472));
  let n = icmp4FragNeeded(out, 0, orig, 0, orig.length, 1450, ROUTER4);
  checkIcmp4(out, 0, n, orig, 3, 4);
  assert.equal(out.readUInt16BE(24), 0, 'unused half is zero');
  assert.equal(icmp.reset(out, 20).nextHopMtu(), 1450);
  n = icmp4TimeExceeded(out, 0, orig, 0, orig.length, ROUTER4);
  checkIcmp4(out, 0, n, orig, 11, 0);
  assert.equal(out.readUInt32BE(24), 0);
});

test('icmp4: the error is a packet our own parser accepts, and its quote parses back to the flow', () => {
  const out = Buffer.alloc(100);
  const orig = tcp4('10.244.2.7', '10.9.9.9', 40000, 443);
  const n = icmp4DestUnreachable(out, 0, orig, 0, orig.length, 13, ROUTER4);
  const p = new FlowKeyParser(), k = new FlowKey(), q = new FlowKey();
  assert.equal(p.parse(out, 0, n, k), Drop.None);
  assert.equal(p.icmpError, true);
  assert.deepEqual([k.protocol, k.icmpType, k.icmpCode, k.dst0], [1, 3, 13, ip4Int('10.244.2.7')]);
  // The quote (IP header + 8 bytes) parses back to the original flow; parse() facts survive.
  assert.equal(p.parse(out, 0, n, k), Drop.None);
  assert.equal(p.parseQuoted(out, p.icmp.quoteOffset(), n - 28, q), Drop.None);
  assert.equal(q.toString(), 'tcp 10.244.2.7:40000 > 10.9.9.9:443');
  assert.equal(p.icmpError, true);
  assert.equal(p.l4Offset, 20);
  // ... and the same for a v6 error about an echo request behind an extension header.
  const o6 = Buffer.alloc(200);
  const e6 = buildIpv6({ src: 'fd00:10:244:2::7', dst: 'fd00:10:244:9::9', ext: [{ type: 60 }] }, { kind: 'icmp', type: 128, id: 99 }, Buffer.alloc(500));
  const n6 = icmp6DestUnreachable(o6, 0, e6, 0, e6.length, 0, ROUTER6);
  assert.ok(n6 > 0);
  assert.equal(p.parse(o6, 0, n6, k), Drop.None);
  assert.equal(p.parseQuoted(o6, p.icmp.quoteOffset(), n6 - 48, q), Drop.None);
  assert.equal(q.toString(), 'icmpv6 [fd00:10:244:2::7] > [fd00:10:244:9::9] type 128/0 id 99');
});

test('icmp4: never about errors, non-first fragments, or non-unicast addresses', () => {
  const out = Buffer.alloc(200);
  const build = (pkt: Buffer): number => icmp4DestUnreachable(out, 0, pkt, 0, pkt.length, 1, ROUTER4);
  const errIn = buildIpv4({ src: '10.0.0.5', dst: '10.0.0.6' }, { kind: 'icmp', type: 3, code: 1 }, Buffer.alloc(28));
  const redirect = buildIpv4({ src: '10.0.0.5', dst: '10.0.0.6' }, { kind: 'icmp', type: 5 }, Buffer.alloc(28));
  const timeEx = buildIpv4({ src: '10.0.0.5', dst: '10.0.0.6' }, { kind: 'icmp', type: 11 }, Buffer.alloc(28));
  const nonFirst = buildIpv4({ src: '10.0.0.5', dst: '10.0.0.6', fragOffset: 8 }, { kind: 'raw', proto: 17 }, Buffer.alloc(20));
  const icmpNoHeader = buildIpv4({ src: '10.0.0.5', dst: '10.0.0.6' }, { kind: 'raw', proto: 1 });
  for (const [name, pkt] of [['icmp error', errIn], ['redirect', redirect], ['time exceeded', timeEx], ['non-first fragment', nonFirst],
    ['icmp without header', icmpNoHeader]] as const) {
    assert.equal(build(pkt), 0, name);
  }
  for (const src of ['0.0.0.0', '127.0.0.1', '224.0.0.5', '255.255.255.255', '240.0.0.1']) {
    assert.equal(build(udp4(src, '10.0.0.6', 1, 2)), 0, `source ${src}`);
  }
  for (const dst of ['224.0.0.251', '239.255.255.250', '255.255.255.255']) {
    assert.equal(build(udp4('10.0.0.5', dst, 1, 2)), 0, `destination ${dst}`);
  }
  // Allowed: echo (not an error), first fragments.
  assert.ok(build(icmp4Echo('10.0.0.5', '10.0.0.6', 1, 1)) > 0, 'echo request');
  assert.ok(build(buildIpv4({ src: '10.0.0.5', dst: '10.0.0.6', mf: true }, { kind: 'udp', sport: 1, dport: 2 }, Buffer.alloc(40))) > 0, 'first fragment');
  // Malformed invoking packet, or no room.
  const bad = tcp4('10.0.0.5', '10.0.0.6', 1, 2); bad[0] = 0x44;
  assert.equal(build(bad), 0, 'malformed');
  const ok = tcp4('10.0.0.5', '10.0.0.6', 1, 2);
  assert.equal(icmp4DestUnreachable(Buffer.alloc(55), 0, ok, 0, ok.length, 1, ROUTER4), 0, 'output too small');
  assert.equal(icmp4DestUnreachable(Buffer.alloc(56), 0, ok, 0, ok.length, 1, ROUTER4), 56, 'exactly enough room');
});

test('icmp4: can be built in place, in front of the invoking packet', () => {
  const orig = tcp4('10.244.2.7', '10.9.9.9', 40000, 443, 2, Buffer.alloc(64, 7));
  const buf = Buffer.concat([Buffer.alloc(28), orig]);
  const n = icmp4DestUnreachable(buf, 0, buf, 28, orig.length, 0, ROUTER4);
  checkIcmp4(buf, 0, n, orig, 3, 0);
  // Overlapping the other way (output after the start of the input) also works.
  const buf2 = Buffer.concat([orig, Buffer.alloc(100)]);
  const m = icmp4DestUnreachable(buf2, 10, buf2, 0, orig.length, 1, ROUTER4);
  checkIcmp4(buf2, 10, m, orig, 3, 1);
});

test('icmp6: destination unreachable, packet too big, time exceeded', () => {
  const out = Buffer.alloc(1500);
  const orig = tcp6('fd00:10:244:2::7', 'fd00:10:244:9::9', 40000, 443, 2, Buffer.alloc(100, 0x61));
  for (const code of [Icmp6Unreach.NoRoute, Icmp6Unreach.AdminProhibited]) {
    const n = icmp6DestUnreachable(out, 4, orig, 0, orig.length, code, ROUTER6);
    checkIcmp6(out, 4, n, orig, 1, code);
    assert.equal(out.readUInt32BE(4 + 44), 0);
  }
  const big = udp6('fd00:10:244:2::7', 'fd00:10:244:3::1', 1, 2, Buffer.alloc(1400));
  let n = icmp6PacketTooBig(out, 0, big, 0, big.length, 1430, ROUTER6);
  checkIcmp6(out, 0, n, big, 2, 0);
  assert.equal(n, 1280, 'quote trimmed so the error fits the IPv6 minimum MTU');
  assert.equal(icmp.reset(out, 40).mtu6(), 1430);
  n = icmp6TimeExceeded(out, 0, orig, 0, orig.length, ROUTER6);
  checkIcmp6(out, 0, n, orig, 3, 0);
  // Router address taken from an offset in a larger buffer.
  const routers = Buffer.concat([Buffer.alloc(5), ROUTER6]);
  n = icmp6DestUnreachable(out, 0, orig, 0, orig.length, 0, routers, 5);
  checkIcmp6(out, 0, n, orig, 1, 0);
  assert.equal(icmp6DestUnreachable(out, 0, orig, 0, orig.length, 0, routers, 6), 0, 'router address past its buffer');
});

test('icmp6: a small scratch buffer gets a shorter quote, never an overflow', () => {
  const big = udp6('fd00::7', 'fd00::8', 1, 2, Buffer.alloc(1400));
  const out = Buffer.alloc(300);
  const n = icmp6PacketTooBig(out, 0, big, 0, big.length, 1280, ROUTER6);
  assert.equal(n, 300);
  assert.ok(l4ChecksumOk(out, 0));
  assert.equal(icmp6PacketTooBig(Buffer.alloc(87), 0, big, 0, big.length, 1280, ROUTER6), 0, 'no room for the invoking header');
});

test('icmp6: RFC 4443 2.4(e) suppression rules', () => {
  const out = Buffer.alloc(1500);
  const unreach = (pkt: Buffer): number => icmp6DestUnreachable(out, 0, pkt, 0, pkt.length, 0, ROUTER6);
  const tooBig = (pkt: Buffer): number => icmp6PacketTooBig(out, 0, pkt, 0, pkt.length, 1280, ROUTER6);
  for (const type of [1, 2, 3, 4, 137]) {
    const e = buildIpv6({ src: 'fd00::5', dst: 'fd00::6' }, { kind: 'icmp', type }, Buffer.alloc(48));
    assert.equal(unreach(e), 0, `type ${type}`);
  }
  const errBehindExt = buildIpv6({ src: 'fd00::5', dst: 'fd00::6', ext: [{ type: 0 }, { type: 60 }] }, { kind: 'icmp', type: 1 }, Buffer.alloc(48));
  assert.equal(unreach(errBehindExt), 0, 'error behind extension headers');
  const nonFirst = buildIpv6({ src: 'fd00::5', dst: 'fd00::6', ext: [{ type: 44, offset: 64 }] }, { kind: 'raw', proto: 17 }, Buffer.alloc(32));
  assert.equal(unreach(nonFirst), 0, 'non-first fragment');
  assert.equal(unreach(udp6('::', 'fd00::6', 1, 2)), 0, 'unspecified source');
  assert.equal(unreach(udp6('ff02::1', 'fd00::6', 1, 2)), 0, 'multicast source');
  assert.equal(unreach(udp6('fd00::5', 'ff02::1', 1, 2)), 0, 'multicast destination');
  assert.ok(tooBig(udp6('fd00::5', 'ff0e::1', 1, 2, Buffer.alloc(1400))) > 0, 'packet too big is allowed for multicast destinations');
  assert.ok(unreach(icmp6Echo('fd00::5', 'fd00::6', 1, 1)) > 0, 'echo request is not an error');
  const malformed = udp6('fd00::5', 'fd00::6', 1, 2); malformed[0] = 0x40;
  assert.equal(unreach(malformed), 0, 'malformed');
});

test('icmp6: in place in front of the invoking packet', () => {
  const orig = udp6('fd00:10:244:2::7', 'fd00:10:244:3::1', 1, 2, Buffer.alloc(64, 3));
  const buf = Buffer.concat([Buffer.alloc(48), orig]);
  const n = icmp6DestUnreachable(buf, 0, buf, 48, orig.length, 0, ROUTER6);
  checkIcmp6(buf, 0, n, orig, 1, 0);
});

test('icmp errors fuzz: random invoking bytes never throw; any output verifies', () => {
  const out = Buffer.alloc(1400);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, six) => {
    const pkt = Buffer.from(bytes);
    if (pkt.length > 0) pkt[0] = six ? 0x60 : 0x45;
    if (pkt.length >= 40) {
      if (six) pkt.writeUInt16BE(pkt.length - 40, 4); else pkt.writeUInt16BE(pkt.length, 2);
    }
    const n = six ? icmp6PacketTooBig(out, 0, pkt, 0, pkt.length, 1280, ROUTER6) : icmp4FragNeeded(out, 0, pkt, 0, pkt.length, 1400, ROUTER4);
    assert.ok(n >= 0);
    if (n > 0) {
      if (!six) assert.ok(ipv4HeaderChecksumOk(out, 0));
      assert.ok(l4ChecksumOk(out, 0));
    }
  }), { numRuns: 3000 });
});
