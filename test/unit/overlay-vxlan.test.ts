import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Drop } from '../../src/packet/drop.js';
import { VXLAN_DEFAULT_PORT, VXLAN_HEADROOM, VxlanBackend } from '../../src/overlay/vxlan.js';
import { Peer, type PeerRecord } from '../../src/overlay/peer.js';
import { inetSum, ipv4HeaderChecksumOk, tcp6, udp4, udp6, withHeadroom } from './packet-fixtures.js';

// Host A (10.244.1.0/24, MAC 02:00:0a:f4:01:00) talks to host B (10.244.2.0/24, MAC 02:00:0a:f4:02:00).
const A: PeerRecord = { name: 'a', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64', vtepMAC: '02:00:0a:f4:01:00' };
const B: PeerRecord = { name: 'b', publicIP: '10.99.0.2', subnet: '10.244.2.0/24', ipv6Subnet: 'fd00:10:244:2::/64', vtepMAC: '02:00:0a:f4:02:00' };
const peerA = new Peer(A, 8472), peerB = new Peer(B, 8472);
const localA = { vtepMac: peerA.vtepMac }, localB = { vtepMac: peerB.vtepMac };
const onA = new VxlanBackend({ local: localA });
const onB = new VxlanBackend({ local: localB });

// A ping 10.244.1.2 -> 10.244.2.3 (id 0x1c46 seq 1, "abcdefgh"), as tcpdump would print it.
const PING_HEX = '45000024 4d2c4000 4001d4c0 0af40102 0af40203 08004a23 1c460001 61626364 65666768';
// The UDP payload a Linux vxlan device (VNI 1) would send for it from A to B.
const FRAME_HEX =
  '08000000 00000100' + //  VXLAN: flags I, reserved, VNI 1, reserved
  '02000af4 0200' + //       inner Ethernet dst: B's VTEP MAC
  '02000af4 0100' + //       inner Ethernet src: A's VTEP MAC
  '0800' + //                EtherType IPv4
  PING_HEX;
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('vxlan: the hand-written ping is a valid packet (sanity of the expected frame)', () => {
  const ping = hex(PING_HEX);
  assert.ok(ipv4HeaderChecksumOk(ping));
  assert.equal(inetSum(ping, 20, ping.length - 20), 0xffff);
});

test('vxlan: encap is byte-exact against a hand-written kernel-format frame', () => {
  const buf = withHeadroom(hex(PING_HEX), VXLAN_HEADROOM);
  buf.fill(0xaa, 0, VXLAN_HEADROOM); // stale headroom must be overwritten, reserved bits included
  const start = onA.encap(buf, VXLAN_HEADROOM, buf.length - VXLAN_HEADROOM, peerB, localA);
  assert.equal(start, 0);
  assert.equal(buf.toString('hex'), hex(FRAME_HEX).toString('hex'));
});

test('vxlan: VNI placement, IPv6 EtherType, headroom beyond the minimum', () => {
  const be = new VxlanBackend({ local: localA, vni: 0xabcdef });
  const inner = tcp6('fd00:10:244:1::2', 'fd00:10:244:2::3', 1, 2);
  const buf = withHeadroom(inner, 64);
  const start = be.encap(buf, 64, inner.length, peerB, localA);
  assert.equal(start, 64 - 22);
  assert.equal(buf.subarray(start, start + 22).toString('hex'), '08000000abcdef00' + '02000af40200' + '02000af40100' + '86dd');
  assert.deepEqual(buf.subarray(64), inner, 'inner packet untouched');
  assert.deepEqual(buf.subarray(0, start), Buffer.alloc(start), 'nothing written before the header');
});

test('vxlan: decap of the kernel-format frame gives the inner packet', () => {
  const frame = Buffer.concat([Buffer.alloc(3), hex(FRAME_HEX)]);
  const inner = onB.decap(frame, 3, frame.length - 3, peerA);
  assert.equal(inner, 3 + 22);
  assert.deepEqual(frame.subarray(inner), hex(PING_HEX));
});

test('vxlan: decap rejects bad frames with the right negative drop code', () => {
  const good = (): Buffer => hex(FRAME_HEX);
  const mut = (f: (b: Buffer) => void): Buffer => { const b = good(); f(b); return b; };
  const v6in4 = Buffer.concat([hex(FRAME_HEX).subarray(0, 22), udp6('fd00:10:244:1::2', 'fd00:10:244:2::3', 1, 2)]);
  const v6 = Buffer.concat([hex(FRAME_HEX).subarray(0, 20), Buffer.from([0x86, 0xdd]), udp6('fd00:10:244:1::2', 'fd00:10:244:2::3', 1, 2)]);
  const v6spoof = Buffer.concat([v6.subarray(0, 22), udp6('fd00:10:244:3::2', 'fd00:10:244:2::3', 1, 2)]);
  const spoof = Buffer.concat([hex(FRAME_HEX).subarray(0, 22), udp4('10.244.3.2', '10.244.2.3', 1, 2)]);
  const cases: [string, Buffer, number, number][] = [
    ['ok', good(), FRAME_HEX.replace(/\s/g, '').length / 2, 22],
    ['ok v6', v6, v6.length, 22],
    ['I flag clear', mut((b) => { b[0] = 0x00; }), -1, -Drop.BadOverlayFlags],
    ['reserved flag bit', mut((b) => { b[0] = 0x0c; }), -1, -Drop.BadOverlayFlags],
    ['GBP-style G bit', mut((b) => { b[0] = 0x88; }), -1, -Drop.BadOverlayFlags],
    ['reserved byte 1', mut((b) => { b[1] = 1; }), -1, -Drop.BadOverlayFlags],
    ['reserved byte 3', mut((b) => { b[3] = 0x80; }), -1, -Drop.BadOverlayFlags],
    ['reserved byte after the VNI', mut((b) => { b[7] = 1; }), -1, -Drop.BadOverlayFlags],
    ['VNI 2', mut((b) => { b[6] = 2; }), -1, -Drop.BadVni],
    ['VNI 0x010001', mut((b) => { b[4] = 1; }), -1, -Drop.BadVni],
    ['dst MAC of someone else', mut((b) => { b[13] = 0x01; }), -1, -Drop.WrongMac],
    ['broadcast dst MAC', mut((b) => { b.fill(0xff, 8, 14); }), -1, -Drop.WrongMac],
    ['ARP EtherType', mut((b) => { b.writeUInt16BE(0x0806, 20); }), -1, -Drop.BadEthertype],
    ['VLAN tag', mut((b) => { b.writeUInt16BE(0x8100, 20); }), -1, -Drop.BadEthertype],
    ['IPv6 EtherType on an IPv4 packet', mut((b) => { b.writeUInt16BE(0x86dd, 20); }), -1, -Drop.BadEthertype],
    ['IPv4 EtherType on an IPv6 packet', v6in4, v6in4.length, -Drop.BadEthertype],
    ['inner source outside the peer subnet', spoof, spoof.length, -Drop.Spoofed],
    ['inner IPv6 source outside the peer subnet', v6spoof, v6spoof.length, -Drop.Spoofed],
    ['no inner byte', good(), 22, -Drop.Truncated],
    ['short VXLAN header', good(), 7, -Drop.Truncated],
    ['inner IPv4 cut before its addresses', good(), 22 + 15, -Drop.Truncated],
    ['len past the buffer', good(), 200, -Drop.Truncated],
  ];
  for (const [name, buf, len, want] of cases) assert.equal(onB.decap(buf, 0, len < 0 ? buf.length : len, peerA), want, name);

  const noV6Peer = new Peer({ ...A, ipv6Subnet: undefined }, 8472);
  assert.equal(onB.decap(v6, 0, v6.length, noV6Peer), -Drop.Spoofed, 'IPv6 from a peer without an IPv6 subnet');
});

test('vxlan: encap refuses what it cannot frame', () => {
  const inner = udp4('10.244.1.2', '10.244.2.3', 1, 2);
  assert.equal(onA.encap(withHeadroom(inner, 21), 21, inner.length, peerB, localA), -Drop.Malformed, 'headroom too small');
  const v5 = withHeadroom(inner, 22); v5[22] = 0x55;
  assert.equal(onA.encap(v5, 22, inner.length, peerB, localA), -Drop.BadVersion);
  assert.equal(onA.encap(withHeadroom(inner, 22), 22, 0, peerB, localA), -Drop.Truncated);
});

test('vxlan property: encap -> decap round trip returns the inner packet unchanged', () => {
  const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((m) => { m[0] &= 0xfe; m[5] |= 1; return Buffer.from(m); });
  const macStr = (m: Buffer): string => [...m].map((x) => x.toString(16).padStart(2, '0')).join(':');
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 0xffffff }), macArb, macArb, fc.boolean(), fc.nat(255), fc.integer({ min: 22, max: 80 }),
    fc.uint8Array({ maxLength: 300 }),
    (vni, macA, macB, six, hostByte, headroom, payload) => {
      fc.pre(!macA.equals(macB));
      const a = new Peer({ ...A, vtepMAC: macStr(macA) }, 8472);
      const b = new Peer({ ...B, vtepMAC: macStr(macB) }, 8472);
      const sender = new VxlanBackend({ local: { vtepMac: a.vtepMac }, vni });
      const receiver = new VxlanBackend({ local: { vtepMac: b.vtepMac }, vni });
      const inner = six
        ? udp6(`fd00:10:244:1::${hostByte.toString(16)}`, 'fd00:10:244:2::3', 5, 6, Buffer.from(payload))
        : udp4(`10.244.1.${hostByte}`, '10.244.2.3', 5, 6, Buffer.from(payload));
      const buf = withHeadroom(inner, headroom, 7);
      const start = sender.encap(buf, headroom, inner.length, b, { vtepMac: a.vtepMac });
      assert.equal(start, headroom - 22);
      const len = 22 + inner.length;
      assert.equal(receiver.decap(buf, start, len, a), headroom);
      assert.deepEqual(buf.subarray(headroom, headroom + inner.length), inner);
      // The same frame is refused by a receiver on another VNI, or with another MAC.
      const otherVni = new VxlanBackend({ local: { vtepMac: b.vtepMac }, vni: (vni + 1) & 0xffffff });
      assert.equal(otherVni.decap(buf, start, len, a), -Drop.BadVni);
      assert.equal(sender.decap(buf, start, len, a), -Drop.WrongMac);
    }), { numRuns: 500 });
});

test('vxlan fuzz: decap of random bytes never throws and returns an offset or a drop code', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (bytes, plausible) => {
    const buf = Buffer.from(bytes);
    if (plausible && buf.length >= 22) hex(FRAME_HEX).copy(buf, 0, 0, 22);
    const r = onB.decap(buf, 0, buf.length, peerA);
    assert.ok(r === 22 || (r < 0 && -r > 0 && -r <= Drop.TtlExceeded), String(r));
  }), { numRuns: 3000 });
});

test('vxlan: options are validated with exact messages; defaults follow Flannel', () => {
  assert.equal(onA.type, 'vxlan');
  assert.equal(onA.port, VXLAN_DEFAULT_PORT);
  assert.equal(onA.port, 8472);
  assert.equal(onA.vni, 1);
  assert.equal(onA.headroom, 22);
  assert.equal(onA.overhead, 50, 'Flannel: encapOverhead = 50');
  assert.throws(() => new VxlanBackend({ local: localA, vni: 1 << 24 }), { name: 'TypeError', message: 'vxlan: vni must be an integer in 0..16777215, got 16777216' });
  assert.throws(() => new VxlanBackend({ local: localA, vni: -1 }), TypeError);
  assert.throws(() => new VxlanBackend({ local: localA, port: 0 }), { message: 'vxlan: port must be an integer in 1..65535, got 0' });
  assert.throws(() => new VxlanBackend({ local: { vtepMac: Buffer.alloc(5) } }), { message: 'vxlan: local.vtepMac must be a 6-byte Buffer' });
  assert.throws(() => new VxlanBackend({ local: { vtepMac: Buffer.from('010203040506', 'hex') } }), { message: 'vxlan: local.vtepMac must be a unicast MAC' });
  assert.equal(new VxlanBackend({ local: localA, port: 4789, vni: 0 }).port, 4789);
});
