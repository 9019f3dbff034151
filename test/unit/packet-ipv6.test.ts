import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Drop } from '../../src/packet/drop.js';
import { IPV6_MAX_EXT_HEADERS, Ipv6View, formatIpv6, isIpv6MulticastWord0 } from '../../src/packet/ipv6.js';
import { buildIpv6, ip6Bytes, tcp6, udp6, type Ipv6Ext } from './packet-fixtures.js';

const v = new Ipv6View();

test('ipv6: fixed header accessors and address words', () => {
  const pkt = buildIpv6({ src: 'fd00:10:244:1::5', dst: '2001:db8::ff00:42:8329', hopLimit: 33, trafficClass: 0xb8, flowLabel: 0x12345 },
    { kind: 'udp', sport: 53, dport: 5353 }, Buffer.from('abc'));
  const buf = Buffer.concat([Buffer.alloc(3), pkt]);
  v.reset(buf, 3);
  assert.equal(v.validate(pkt.length), Drop.None);
  assert.equal(v.version(), 6);
  assert.equal(v.trafficClass(), 0xb8);
  assert.equal(v.flowLabel(), 0x12345);
  assert.equal(v.payloadLength(), 11);
  assert.equal(v.totalLength(), 51);
  assert.equal(v.nextHeader(), 17);
  assert.equal(v.protocol(), 17);
  assert.equal(v.hopLimit(), 33);
  assert.equal(v.payloadOffset(), 43);
  assert.equal(v.upperLayerLength(), 11);
  assert.equal(v.extHeaderCount(), 0);
  assert.equal(v.isFragment(), false);
  const src = ip6Bytes('fd00:10:244:1::5');
  const dst = ip6Bytes('2001:db8::ff00:42:8329');
  for (let i = 0; i < 4; i++) {
    assert.equal(v.srcWord(i), src.readInt32BE(i * 4));
    assert.equal(v.dstWord(i), dst.readInt32BE(i * 4));
  }
  assert.equal(v.srcOffset(), 11);
  assert.equal(v.dstOffset(), 27);
  assert.equal(formatIpv6(buf, v.dstOffset()), '2001:db8::ff00:42:8329');
  assert.equal(v.decrementHopLimit(), 32);
});

test('ipv6: walks HBH, routing, dest opts and AH to the upper layer', () => {
  const ext: Ipv6Ext[] = [{ type: 0 }, { type: 43, len: 24 }, { type: 51, len: 16 }, { type: 60, len: 16 }];
  const pkt = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext }, { kind: 'tcp', sport: 1, dport: 443 });
  v.reset(pkt, 0);
  assert.equal(v.validate(pkt.length), Drop.None);
  assert.equal(v.nextHeader(), 0);
  assert.equal(v.protocol(), 6);
  assert.equal(v.payloadOffset(), 40 + 8 + 24 + 16 + 16);
  assert.equal(v.extHeaderCount(), 4);
  assert.equal(pkt.readUInt16BE(v.payloadOffset() + 2), 443);
});

test('ipv6: fragment header, first and non-first', () => {
  const first = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 44, mf: true, id: 77 }] }, { kind: 'udp', sport: 9, dport: 10 });
  v.reset(first, 0);
  assert.equal(v.validate(first.length), Drop.None);
  assert.deepEqual([v.hasFragmentHeader(), v.isFragment(), v.isNonFirstFragment(), v.moreFragments(), v.fragmentId(), v.protocol(), v.payloadOffset()],
    [true, true, false, true, 77, 17, 48]);

  // Non-first fragment: the walk stops after the fragment header even if the data looks like a header.
  const later = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 44, offset: 1232 }] }, { kind: 'raw', proto: 0 }, Buffer.alloc(16, 0xff));
  v.reset(later, 0);
  assert.equal(v.validate(later.length), Drop.None);
  assert.deepEqual([v.isFragment(), v.isNonFirstFragment(), v.fragmentOffset(), v.protocol(), v.payloadOffset()], [true, true, 1232, 0, 48]);

  // Atomic fragment (offset 0, M clear) is not a fragment.
  const atomic = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 44 }] }, { kind: 'udp', sport: 1, dport: 2 });
  v.reset(atomic, 0);
  assert.equal(v.validate(atomic.length), Drop.None);
  assert.deepEqual([v.hasFragmentHeader(), v.isFragment(), v.protocol()], [true, false, 17]);
});

test('ipv6: validate rejects with the right reason', () => {
  const good = tcp6('fd00::1', 'fd00::2', 1, 2);
  const mut = (b0: Buffer, f: (b: Buffer) => void): Buffer => { const b = Buffer.from(b0); f(b); return b; };
  const chainPastEnd = mut(buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 60 }] }, { kind: 'raw', proto: 59 }), (b) => { b[41] = 3; });
  const hdrPastEnd = buildIpv6({ src: 'fd00::1', dst: 'fd00::2' }, { kind: 'raw', proto: 43 }, Buffer.alloc(1));
  const hbhLate = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 60 }, { type: 0 }] }, { kind: 'udp', sport: 1, dport: 2 });
  const twoFrags = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 44 }, { type: 44 }] }, { kind: 'udp', sport: 1, dport: 2 });
  const many: Ipv6Ext[] = Array.from({ length: IPV6_MAX_EXT_HEADERS + 1 }, () => ({ type: 60 as const }));
  const tooMany = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: many }, { kind: 'udp', sport: 1, dport: 2 });
  const maxOk = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: many.slice(1) }, { kind: 'udp', sport: 1, dport: 2 });
  const cases: [string, Buffer, number, Drop][] = [
    ['ok', good, good.length, Drop.None],
    ['39 bytes', good, 39, Drop.Truncated],
    ['len beyond buffer', good, good.length + 1, Drop.Truncated],
    ['version 4', mut(good, (b) => { b[0] = 0x40; }), good.length, Drop.BadVersion],
    ['payload length past the end', mut(good, (b) => { b.writeUInt16BE(21, 4); }), good.length, Drop.BadTotalLength],
    ['truncated read', good, 50, Drop.BadTotalLength],
    ['ext header length past the payload', chainPastEnd, chainPastEnd.length, Drop.BadExtHeader],
    ['ext header with no room for its length byte', hdrPastEnd, hdrPastEnd.length, Drop.BadExtHeader],
    ['hop-by-hop not first', hbhLate, hbhLate.length, Drop.BadExtHeader],
    ['two fragment headers', twoFrags, twoFrags.length, Drop.BadExtHeader],
    ['chain longer than the bound', tooMany, tooMany.length, Drop.BadExtHeader],
    ['chain at the bound', maxOk, maxOk.length, Drop.None],
  ];
  for (const [name, buf, len, want] of cases) assert.equal(v.reset(buf, 0).validate(len), want, name);
});

test('ipv6: no next header and ESP stop the walk', () => {
  const nn = buildIpv6({ src: 'fd00::1', dst: 'fd00::2', ext: [{ type: 60 }] }, { kind: 'raw', proto: 59 }, Buffer.alloc(5));
  v.reset(nn, 0);
  assert.equal(v.validate(nn.length), Drop.None);
  assert.equal(v.protocol(), 59);
  const esp = buildIpv6({ src: 'fd00::1', dst: 'fd00::2' }, { kind: 'raw', proto: 50 }, Buffer.alloc(30, 0x2b));
  v.reset(esp, 0);
  assert.equal(v.validate(esp.length), Drop.None);
  assert.deepEqual([v.protocol(), v.payloadOffset(), v.upperLayerLength()], [50, 40, 30]);
});

test('ipv6: helpers', () => {
  assert.equal(isIpv6MulticastWord0(ip6Bytes('ff02::1').readInt32BE(0)), true);
  assert.equal(isIpv6MulticastWord0(ip6Bytes('fe80::1').readInt32BE(0)), false);
  assert.equal(formatIpv6(ip6Bytes('::'), 0), '::');
  assert.equal(formatIpv6(ip6Bytes('fd00:0:0:1:0:0:0:1'), 0), 'fd00:0:0:1::1');
  assert.equal(formatIpv6(ip6Bytes('1:2:3:4:5:6:7:8'), 0), '1:2:3:4:5:6:7:8');
  const u = udp6('::1', '::2', 1, 2);
  assert.equal(v.reset(u, 0).validate(u.length), Drop.None);
});

test('ipv6 fuzz: random bytes and random extension chains never throw and stay in bounds', () => {
  const extTypes = [0, 43, 44, 51, 60, 6, 17, 58, 59];
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 160 }), fc.array(fc.constantFrom(...extTypes), { maxLength: 12 }),
    fc.boolean(), (bytes, chain, fixLen) => {
      const buf = Buffer.from(bytes);
      if (buf.length >= 40) {
        buf[0] = 0x60 | (buf[0] & 0x0f);
        if (fixLen) buf.writeUInt16BE(buf.length - 40, 4);
        // Plant a chain of next-header values at plausible places to drive the walker deep.
        buf[6] = chain[0] ?? buf[6];
        let p = 40;
        for (let i = 1; i < chain.length && p + 1 < buf.length; i++) {
          buf[p] = chain[i];
          buf[p + 1] &= 3;
          p += 8;
        }
      }
      const r = v.reset(buf, 0).validate(buf.length);
      assert.ok([Drop.None, Drop.Truncated, Drop.BadVersion, Drop.BadTotalLength, Drop.BadExtHeader].includes(r as never));
      if (r === Drop.None) {
        assert.ok(v.payloadOffset() >= 40 && v.payloadOffset() <= v.totalLength());
        assert.ok(v.upperLayerLength() >= 0);
        assert.ok(v.extHeaderCount() <= IPV6_MAX_EXT_HEADERS + 1);
      }
    }), { numRuns: 5000 });
});
