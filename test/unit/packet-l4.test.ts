import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Drop } from '../../src/packet/drop.js';
import { IcmpView, icmpPeerType, isIcmp4Error, isIcmp6Error } from '../../src/packet/icmp.js';
import { TcpFlag, TcpView } from '../../src/packet/tcp.js';
import { UdpView } from '../../src/packet/udp.js';
import { TCP, buildIpv4, buildIpv6, icmp4Echo, udp4 } from './packet-fixtures.js';

const tcp = new TcpView();
const udp = new UdpView();
const icmp = new IcmpView();

test('tcp: ports, numbers, flags, header length', () => {
  const opts = Buffer.from([2, 4, 0x05, 0xb4, 1, 1, 1, 0]); // MSS 1460, NOP NOP NOP... padded
  const pkt = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' },
    { kind: 'tcp', sport: 40000, dport: 443, seq: 0xfffffff0, ack: 7, flags: TCP.SYN | TCP.ACK, window: 1234, options: opts }, Buffer.from('xy'));
  tcp.reset(pkt, 20);
  assert.equal(tcp.validate(pkt.length - 20), Drop.None);
  assert.equal(tcp.srcPort(), 40000);
  assert.equal(tcp.dstPort(), 443);
  assert.equal(tcp.seqNumber(), 0xfffffff0);
  assert.equal(tcp.ackNumber(), 7);
  assert.equal(tcp.headerLength(), 28);
  assert.equal(tcp.payloadOffset(), 48);
  assert.equal(tcp.window(), 1234);
  assert.equal(tcp.flags(), TcpFlag.SYN | TcpFlag.ACK);
  assert.deepEqual([tcp.syn(), tcp.ack(), tcp.fin(), tcp.rst()], [true, true, false, false]);
  for (const [flags, want] of [[TCP.FIN | TCP.ACK, [false, true, true, false]], [TCP.RST, [false, false, false, true]]] as const) {
    const p = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'tcp', sport: 1, dport: 2, flags });
    tcp.reset(p, 20);
    assert.deepEqual([tcp.syn(), tcp.ack(), tcp.fin(), tcp.rst()], want);
  }
});

test('tcp: validate rejects bad data offsets and short segments', () => {
  const pkt = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'tcp', sport: 1, dport: 2 }, Buffer.alloc(12));
  const seg = pkt.length - 20;
  const withDoff = (d: number): Buffer => { const b = Buffer.from(pkt); b[32] = (d << 4) | (b[32] & 0x0f); return b; };
  const cases: [string, Buffer, number, Drop][] = [
    ['ok', pkt, seg, Drop.None],
    ['19-byte segment', pkt, 19, Drop.BadL4],
    ['data offset 4', withDoff(4), seg, Drop.BadL4],
    ['data offset 0', withDoff(0), seg, Drop.BadL4],
    ['data offset 8 = 32 bytes fits', withDoff(8), seg, Drop.None],
    ['data offset 9 past the segment', withDoff(9), seg, Drop.BadL4],
    ['data offset 15', withDoff(15), seg, Drop.BadL4],
    ['segment longer than the buffer', pkt, seg + 1, Drop.BadL4],
  ];
  for (const [name, buf, len, want] of cases) assert.equal(tcp.reset(buf, 20).validate(len), want, name);
});

test('udp: fields and length checks', () => {
  const pkt = udp4('10.0.0.1', '10.0.0.2', 5353, 53, Buffer.from('payload'));
  udp.reset(pkt, 20);
  assert.equal(udp.validate(pkt.length - 20), Drop.None);
  assert.deepEqual([udp.srcPort(), udp.dstPort(), udp.length(), udp.payloadOffset(), udp.payloadLength()], [5353, 53, 15, 28, 7]);
  assert.notEqual(udp.checksum(), 0);
  const bad = (l: number): Buffer => { const b = Buffer.from(pkt); b.writeUInt16BE(l, 24); return b; };
  assert.equal(udp.reset(bad(7), 20).validate(15), Drop.BadL4, 'length < 8');
  assert.equal(udp.reset(bad(16), 20).validate(15), Drop.BadL4, 'length past the datagram');
  assert.equal(udp.reset(bad(8), 20).validate(15), Drop.None, 'shorter UDP length than IP payload is allowed');
  assert.equal(udp.reset(pkt, 20).validate(7), Drop.BadL4, 'short header');
});

test('icmp: echo fields, error classification, peer types', () => {
  const pkt = icmp4Echo('10.0.0.1', '10.0.0.2', 0x1234, 9);
  icmp.reset(pkt, 20);
  assert.equal(icmp.validate(pkt.length - 20), Drop.None);
  assert.deepEqual([icmp.type(), icmp.code(), icmp.echoId(), icmp.echoSeq(), icmp.quoteOffset()], [8, 0, 0x1234, 9, 28]);
  assert.equal(icmp.validate(7), Drop.BadL4);
  const ptb = buildIpv6({ src: 'fd00::1', dst: 'fd00::2' }, { kind: 'icmp', type: 2, rest: 1400 });
  icmp.reset(ptb, 40);
  assert.equal(icmp.mtu6(), 1400);
  const fn = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'icmp', type: 3, code: 4, rest: 1450 });
  assert.equal(icmp.reset(fn, 20).nextHopMtu(), 1450);
  assert.deepEqual([3, 4, 5, 11, 12].map(isIcmp4Error), [true, true, true, true, true]);
  assert.deepEqual([0, 8, 13, 14].map(isIcmp4Error), [false, false, false, false]);
  assert.deepEqual([1, 2, 3, 4, 127, 128, 129, 135].map(isIcmp6Error), [true, true, true, true, true, false, false, false]);
  assert.deepEqual([8, 0, 13, 14, 3].map((t) => icmpPeerType(4, t)), [0, 8, 14, 13, -1]);
  assert.deepEqual([128, 129, 1, 8].map((t) => icmpPeerType(6, t)), [129, 128, -1, -1]);
});

test('l4 fuzz: views never throw on random bytes and lengths', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(70), (bytes, len) => {
    const buf = Buffer.from(bytes);
    for (const view of [tcp, udp, icmp]) {
      const r = view.reset(buf, 0).validate(len);
      assert.ok(r === Drop.None || r === Drop.BadL4);
      if (r === Drop.None) assert.ok(len <= buf.length);
    }
    if (tcp.reset(buf, 0).validate(len) === Drop.None) assert.ok(tcp.headerLength() >= 20 && tcp.headerLength() <= len);
    if (udp.reset(buf, 0).validate(len) === Drop.None) assert.ok(udp.length() >= 8 && udp.length() <= len);
  }), { numRuns: 3000 });
});
