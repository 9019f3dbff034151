import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Drop } from '../../src/packet/drop.js';
import { Ipv4Fields, Ipv4View, encodeIpv4, formatIpv4, isIpv4Multicast, isIpv4NonUnicast } from '../../src/packet/ipv4.js';
import { buildIpv4, ip4Int, ipv4HeaderChecksumOk, tcp4, udp4 } from './packet-fixtures.js';

const v = new Ipv4View();

test('ipv4: accessors on a real TCP packet at an offset', () => {
  const pkt = buildIpv4({ src: '10.244.1.5', dst: '192.168.7.9', ttl: 17, id: 0xbeef, df: true, tos: 0x10 },
    { kind: 'tcp', sport: 1234, dport: 80 }, Buffer.from('hello'));
  const buf = Buffer.concat([Buffer.alloc(7, 0xee), pkt, Buffer.alloc(3, 0xee)]);
  v.reset(buf, 7);
  assert.equal(v.validate(pkt.length + 3), Drop.None); // trailing bytes (padding) are allowed
  assert.equal(v.version(), 4);
  assert.equal(v.headerLength(), 20);
  assert.equal(v.totalLength(), 20 + 20 + 5);
  assert.equal(v.tos(), 0x10);
  assert.equal(v.id(), 0xbeef);
  assert.equal(v.dontFragment(), true);
  assert.equal(v.moreFragments(), false);
  assert.equal(v.isFragment(), false);
  assert.equal(v.ttl(), 17);
  assert.equal(v.protocol(), 6);
  assert.equal(v.src(), 0x0af40105);
  assert.equal(v.dst(), ip4Int('192.168.7.9'));
  assert.ok(v.dst() < 0, '192.168.x.x is a negative int32');
  assert.equal(v.dst() >>> 0, 0xc0a80709);
  assert.equal(v.payloadOffset(), 27);
  assert.equal(v.payloadLength(), 25);
  assert.equal(v.checksumOk(), true);
});

test('ipv4: options move the payload offset', () => {
  const pkt = buildIpv4({ src: '1.2.3.4', dst: '5.6.7.8', options: Buffer.from([1, 1, 1, 0, 1, 1, 1, 0]) },
    { kind: 'udp', sport: 1, dport: 2 });
  v.reset(pkt, 0);
  assert.equal(v.validate(pkt.length), Drop.None);
  assert.equal(v.headerLength(), 28);
  assert.equal(v.payloadOffset(), 28);
  assert.equal(v.checksumOk(), true);
});

test('ipv4: fragment fields', () => {
  const first = buildIpv4({ src: '1.2.3.4', dst: '5.6.7.8', mf: true }, { kind: 'udp', sport: 1, dport: 2 }, Buffer.alloc(16));
  v.reset(first, 0);
  assert.equal(v.validate(first.length), Drop.None);
  assert.deepEqual([v.isFragment(), v.moreFragments(), v.isNonFirstFragment(), v.fragmentOffset()], [true, true, false, 0]);
  const later = buildIpv4({ src: '1.2.3.4', dst: '5.6.7.8', fragOffset: 1480 }, { kind: 'raw', proto: 17 }, Buffer.alloc(16));
  v.reset(later, 0);
  assert.equal(v.validate(later.length), Drop.None);
  assert.deepEqual([v.isFragment(), v.moreFragments(), v.isNonFirstFragment(), v.fragmentOffset()], [true, false, true, 1480]);
});

test('ipv4: validate rejects with the right reason', () => {
  const good = tcp4('10.0.0.1', '10.0.0.2', 1000, 80);
  const mut = (f: (b: Buffer) => void): Buffer => { const b = Buffer.from(good); f(b); return b; };
  const cases: [string, Buffer, number, Drop][] = [
    ['ok', good, good.length, Drop.None],
    ['empty', good, 0, Drop.Truncated],
    ['19 bytes', good, 19, Drop.Truncated],
    ['len beyond the buffer', good, good.length + 1, Drop.Truncated],
    ['version 6', mut((b) => { b[0] = 0x65; }), good.length, Drop.BadVersion],
    ['version 0', mut((b) => { b[0] = 0x05; }), good.length, Drop.BadVersion],
    ['IHL 4', mut((b) => { b[0] = 0x44; }), good.length, Drop.BadHeaderLength],
    ['IHL 0', mut((b) => { b[0] = 0x40; }), good.length, Drop.BadHeaderLength],
    ['IHL 15 > packet', mut((b) => { b[0] = 0x4f; }), 40, Drop.BadHeaderLength],
    ['total < IHL', mut((b) => { b.writeUInt16BE(19, 2); }), good.length, Drop.BadTotalLength],
    ['total > read', mut((b) => { b.writeUInt16BE(good.length + 1, 2); }), good.length, Drop.BadTotalLength],
    ['total = header only', mut((b) => { b.writeUInt16BE(20, 2); }), good.length, Drop.None],
    ['truncated read', good, 30, Drop.BadTotalLength],
  ];
  for (const [name, buf, len, want] of cases) {
    assert.equal(v.reset(buf, 0).validate(len), want, name);
  }
});

test('ipv4: decrementTtl keeps the header checksum valid', () => {
  for (const ttl of [1, 2, 64, 128, 255]) {
    const pkt = buildIpv4({ src: '10.1.2.3', dst: '10.3.2.1', ttl }, { kind: 'udp', sport: 5, dport: 6 });
    v.reset(pkt, 0);
    assert.equal(v.decrementTtl(), ttl - 1);
    assert.equal(v.ttl(), ttl - 1);
    assert.ok(ipv4HeaderChecksumOk(pkt), `ttl ${ttl}`);
    assert.ok(v.checksumOk());
  }
  const pkt = udp4('10.1.2.3', '10.3.2.1', 5, 6);
  pkt[10] ^= 0xff;
  assert.equal(v.reset(pkt, 0).checksumOk(), false);
  v.updateChecksum();
  assert.ok(ipv4HeaderChecksumOk(pkt));
});

test('ipv4: encodeIpv4 writes a valid header', () => {
  const f = new Ipv4Fields();
  f.totalLength = 48; f.id = 7; f.dontFragment = true; f.ttl = 9; f.protocol = 17;
  f.src = ip4Int('192.0.2.1'); f.dst = ip4Int('10.0.0.9');
  const buf = Buffer.alloc(60);
  assert.equal(encodeIpv4(buf, 4, f), 20);
  assert.ok(ipv4HeaderChecksumOk(buf, 4));
  v.reset(buf, 4);
  assert.equal(v.validate(48), Drop.None);
  assert.deepEqual([v.totalLength(), v.id(), v.dontFragment(), v.ttl(), v.protocol(), v.src(), v.dst()],
    [48, 7, true, 9, 17, ip4Int('192.0.2.1'), ip4Int('10.0.0.9')]);
});

test('ipv4: address classes and formatting', () => {
  for (const a of ['0.0.0.0', '127.0.0.1', '224.0.0.1', '239.1.1.1', '240.0.0.1', '255.255.255.255']) {
    assert.equal(isIpv4NonUnicast(ip4Int(a)), true, a);
  }
  for (const a of ['10.0.0.1', '1.1.1.1', '192.168.1.1', '223.255.255.255']) assert.equal(isIpv4NonUnicast(ip4Int(a)), false, a);
  assert.equal(isIpv4Multicast(ip4Int('224.0.0.251')), true);
  assert.equal(isIpv4Multicast(ip4Int('255.255.255.255')), false);
  assert.equal(formatIpv4(ip4Int('192.168.0.254')), '192.168.0.254');
});

test('ipv4 fuzz: random bytes never throw; accepted headers are self-consistent', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(8), (bytes, lead) => {
    const buf = Buffer.concat([Buffer.alloc(lead), Buffer.from(bytes)]);
    if (buf.length > lead) buf[lead] = (buf[lead] & 0x0f) | (bytes[0] % 3 === 0 ? 0x40 : bytes[0] & 0xf0);
    const len = buf.length - lead;
    const r = v.reset(buf, lead).validate(len);
    assert.ok(r === Drop.None || r === Drop.Truncated || r === Drop.BadVersion || r === Drop.BadHeaderLength || r === Drop.BadTotalLength);
    if (r === Drop.None) {
      assert.ok(v.headerLength() >= 20 && v.headerLength() <= v.totalLength() && v.totalLength() <= len);
      assert.ok(v.payloadOffset() + v.payloadLength() <= buf.length);
      v.src(); v.dst(); v.isFragment(); v.checksumOk();
    }
  }), { numRuns: 5000 });
});
