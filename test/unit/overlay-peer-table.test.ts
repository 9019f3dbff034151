import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ipv6View } from '../../src/packet/ipv6.js';
import { PeerTable, type PeerRecord } from '../../src/overlay/peer-table.js';
import { PrefixMap } from '../../src/overlay/prefix-map.js';
import { ip4Int, ip6Bytes, udp6 } from './packet-fixtures.js';

const rec = (name: string, n: number, extra: Partial<PeerRecord> = {}): PeerRecord => ({
  name, publicIP: `10.99.0.${n}`, subnet: `10.244.${n}.0/24`, ipv6Subnet: `fd00:10:244:${n}::/64`,
  vtepMAC: `02:00:0a:f4:0${n % 10}:00`, ...extra,
});

test('peer: parsed into numbers', () => {
  const t = new PeerTable(8472, [rec('b', 1, { port: 9000 })]);
  const p = t.get('b')!;
  assert.equal(p.underlayAddr, 0x0a630001);
  assert.equal(p.port, 9000);
  assert.deepEqual([...p.vtepMac], [2, 0, 0x0a, 0xf4, 0x01, 0]);
  assert.equal(p.net4, ip4Int('10.244.1.0'));
  assert.equal(p.prefix4, 24);
  assert.equal(p.mask4, ip4Int('255.255.255.0'));
  assert.equal(p.prefix6, 64);
  const w = ip6Bytes('fd00:10:244:1::');
  assert.deepEqual([...p.net6], [0, 4, 8, 12].map((i) => w.readInt32BE(i)));
  assert.deepEqual([...p.mask6], [-1, -1, 0, 0]);
  assert.equal(p.containsSrc4(ip4Int('10.244.1.77')), true);
  assert.equal(p.containsSrc4(ip4Int('10.244.2.77')), false);
  const v = new Ipv6View().reset(udp6('fd00:10:244:1::5', 'fd00::1', 1, 2), 0);
  assert.equal(p.containsSrc6(v), true);
  v.reset(udp6('fd00:10:244:2::5', 'fd00::1', 1, 2), 0);
  assert.equal(p.containsSrc6(v), false);
  assert.ok(p.macEquals(Buffer.from([9, 2, 0, 0x0a, 0xf4, 1, 0]), 1));
  assert.equal(t.get('b')!.toString(), 'b (10.99.0.1:9000, 10.244.1.0/24)');
  const noV6 = new PeerTable(8472, [{ name: 'c', publicIP: '192.168.5.200', subnet: '10.244.9.0/24', vtepMAC: 'aa:bb:cc:dd:ee:ff' }]).get('c')!;
  assert.equal(noV6.port, 8472, 'default port');
  assert.equal(noV6.underlayAddr, 0xc0a805c8, 'uint32 even above 2^31');
  assert.equal(noV6.prefix6, -1);
  assert.equal(noV6.contains6(0, 0, 0, 0), false);
  assert.equal(noV6.macLo, Buffer.from('ccddeeff', 'hex').readInt32BE(0));
});

test('peer table: longest-prefix match, v4 and v6', () => {
  const t = new PeerTable(8472, [
    rec('wide', 1, { subnet: '10.0.0.0/8', ipv6Subnet: 'fd00::/16' }),
    rec('host1', 2, { subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64' }),
    rec('small', 3, { subnet: '10.244.1.128/25', ipv6Subnet: 'fd00:10:244:1:8000::/65' }),
    rec('single', 4, { subnet: '10.244.1.200/32', ipv6Subnet: 'fd00:10:244:1::c8/128' }),
    rec('high', 5, { subnet: '192.168.0.0/16', ipv6Subnet: undefined }),
  ]);
  const name4 = (a: string): string | undefined => t.lookupByDst4(ip4Int(a))?.name;
  assert.equal(name4('10.244.1.5'), 'host1');
  assert.equal(name4('10.244.1.129'), 'small');
  assert.equal(name4('10.244.1.200'), 'single');
  assert.equal(name4('10.244.2.1'), 'wide');
  assert.equal(name4('192.168.255.1'), 'high');
  assert.equal(name4('11.0.0.1'), undefined);
  const name6 = (a: string): string | undefined => {
    const b = ip6Bytes(a);
    return t.lookupByDst6Words(b.readInt32BE(0), b.readInt32BE(4), b.readInt32BE(8), b.readInt32BE(12))?.name;
  };
  assert.equal(name6('fd00:10:244:1::5'), 'host1');
  assert.equal(name6('fd00:10:244:1:8000::5'), 'small');
  assert.equal(name6('fd00:10:244:1::c8'), 'single');
  assert.equal(name6('fd00:1::1'), 'wide');
  assert.equal(name6('fe80::1'), undefined);
  const v = new Ipv6View().reset(udp6('fd00::9', 'fd00:10:244:1:ffff::1', 1, 2), 0);
  assert.equal(t.lookupByDst6(v)?.name, 'small');
});

test('peer table: underlay lookup by address and port', () => {
  const t = new PeerTable(8472, [
    rec('a', 1),
    rec('lab1', 2, { publicIP: '10.99.0.50', port: 9001 }),
    rec('lab2', 3, { publicIP: '10.99.0.50', port: 9002 }),
    rec('hi', 4, { publicIP: '203.0.113.9' }),
  ]);
  assert.equal(t.lookupByUnderlay(0x0a630001, 8472)?.name, 'a');
  assert.equal(t.lookupByUnderlay(0x0a630001, 40123)?.name, 'a', 'kernel VXLAN sends from a random source port');
  assert.equal(t.lookupByUnderlay(0x0a630032, 9002)?.name, 'lab2');
  assert.equal(t.lookupByUnderlay(0x0a630032, 9001)?.name, 'lab1');
  assert.equal(t.lookupByUnderlay(0x0a630032, 40000), null, 'ambiguous address, no port match');
  assert.equal(t.lookupByUnderlay(0xcb007109, 8472)?.name, 'hi');
  assert.equal(t.lookupByUnderlay(0xcb007109 | 0, 8472)?.name, 'hi', 'int32 form works too');
  assert.equal(t.lookupByUnderlay(0x0a630099, 8472), null);
});

test('peer table: add, replace, remove, replaceAll, generation', () => {
  const t = new PeerTable(8472);
  assert.equal(t.size, 0);
  assert.equal(t.lookupByDst4(ip4Int('10.244.1.1')), null);
  const g0 = t.generation;
  t.add(rec('a', 1));
  t.add(rec('b', 2));
  assert.equal(t.size, 2);
  assert.ok(t.generation > g0);
  t.add(rec('a', 1, { subnet: '10.244.7.0/24', publicIP: '10.99.0.7' })); // same name: replaced
  assert.equal(t.size, 2);
  assert.equal(t.lookupByDst4(ip4Int('10.244.1.1')), null);
  assert.equal(t.lookupByDst4(ip4Int('10.244.7.1'))?.name, 'a');
  assert.equal(t.lookupByUnderlay(0x0a630001, 8472), null);
  assert.equal(t.lookupByUnderlay(0x0a630007, 8472)?.name, 'a');
  assert.equal(t.remove('a'), true);
  assert.equal(t.remove('a'), false);
  assert.equal(t.lookupByDst4(ip4Int('10.244.7.1')), null);
  t.replaceAll([rec('x', 5), rec('y', 6)]);
  assert.deepEqual(t.peers().map((p) => p.name).sort(), ['x', 'y']);
  assert.equal(t.get('b'), undefined);
  const g1 = t.generation;
  assert.throws(() => t.replaceAll([rec('z', 7), rec('bad', 8, { subnet: 'nope' })]), /peer "bad": subnet "nope"/);
  assert.deepEqual(t.peers().map((p) => p.name).sort(), ['x', 'y'], 'a failed replaceAll changes nothing');
  assert.equal(t.generation, g1);
});

test('peer table: bad records are rejected with the host and field named', () => {
  const t = new PeerTable(8472, [rec('a', 1)]);
  const cases: [Partial<PeerRecord> & Record<string, unknown>, RegExp][] = [
    [{ publicIP: '10.99.0' }, /peer "h": publicIP "10\.99\.0" is not an IPv4 address/],
    [{ publicIP: '010.99.0.1' }, /peer "h": publicIP/],
    [{ publicIP: 'fd00::1' }, /peer "h": publicIP/],
    [{ publicIP: 7 as unknown as string }, /peer "h": publicIP 7/],
    [{ subnet: '10.244.5.0' }, /peer "h": subnet "10\.244\.5\.0" is not a CIDR/],
    [{ subnet: '10.244.5.0/33' }, /peer "h": subnet "10\.244\.5\.0\/33" has a prefix length outside 0\.\.32/],
    [{ subnet: '10.244.5.0/x' }, /peer "h": subnet .* has a prefix length outside/],
    [{ subnet: 42 as unknown as string }, /peer "h": subnet 42 must be an IPv4 CIDR string/],
    [{ subnet: '10.244.5.1/24' }, /peer "h": subnet "10\.244\.5\.1\/24" has host bits set/],
    [{ subnet: 'fd00::/64' }, /peer "h": subnet "fd00::\/64" is not an IPv4 CIDR/],
    [{ ipv6Subnet: 'fd00:10:244:5::1/64' }, /peer "h": ipv6Subnet .* has host bits set/],
    [{ ipv6Subnet: '10.0.0.0/8' }, /peer "h": ipv6Subnet "10\.0\.0\.0\/8" is not an IPv6 CIDR/],
    [{ ipv6Subnet: 'fd00::/129' }, /peer "h": ipv6Subnet .* has a prefix length outside 0\.\.128/],
    [{ ipv6Subnet: 'fe80::%eth0/64' }, /peer "h": ipv6Subnet/],
    [{ vtepMAC: '02:00:0a:f4:05' }, /peer "h": vtepMAC "02:00:0a:f4:05" is not a MAC address/],
    [{ vtepMAC: '01:00:5e:00:00:01' }, /peer "h": vtepMAC .* multicast/],
    [{ vtepMAC: 'ff:ff:ff:ff:ff:ff' }, /peer "h": vtepMAC .* multicast\/broadcast/],
    [{ vtepMAC: '00:00:00:00:00:00' }, /peer "h": vtepMAC .* all-zero/],
    [{ port: 0 }, /peer "h": port must be an integer in 1\.\.65535, got 0/],
    [{ port: 70000 }, /peer "h": port/],
    [{ port: 1.5 }, /peer "h": port/],
    [{ subnet: '10.244.1.0/24' }, /peer "h": subnet "10\.244\.1\.0\/24" is already owned by peer "a"/],
    [{ ipv6Subnet: 'fd00:10:244:1::/64' }, /peer "h": ipv6Subnet .* is already owned by peer "a"/],
    [{ publicIP: '10.99.0.1' }, /peer "h": publicIP:port 10\.99\.0\.1:8472 is already used by peer "a"/],
    [{ name: '' }, /name must be a non-empty string/],
  ];
  for (const [patch, re] of cases) {
    assert.throws(() => t.add({ ...rec('h', 5), ...patch } as PeerRecord), re, JSON.stringify(patch));
  }
  assert.throws(() => t.replaceAll([rec('d', 5), rec('d', 6)]), /peer "d": duplicate name/);
  assert.equal(t.size, 1, 'failed adds changed nothing');
  assert.equal(t.get('a')!.prefix4, 24);
});

test('prefix map property: agrees with a linear longest-prefix scan', () => {
  const prefixArb = fc.record({ addr: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), len: fc.integer({ min: 0, max: 32 }) });
  fc.assert(fc.property(fc.array(prefixArb, { maxLength: 30 }), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 30 }),
    (prefixes, probes) => {
      const mask = (len: number): number => (len === 0 ? 0 : (-1 << (32 - len)) | 0);
      const uniq = new Map<string, { net: number; len: number; id: number }>();
      prefixes.forEach((p, id) => { const net = p.addr & mask(p.len); uniq.set(`${net}/${p.len}`, { net, len: p.len, id }); });
      const entries = [...uniq.values()];
      const m = new PrefixMap<number>(32);
      m.rebuild(entries.map((e) => ({ words: [e.net, 0, 0, 0], prefix: e.len, value: e.id })));
      // Probe both random addresses and addresses inside the prefixes.
      for (const a of [...probes, ...entries.map((e) => e.net | 1)]) {
        let best: { len: number; id: number } | null = null;
        for (const e of entries) if ((a & mask(e.len)) === e.net && (!best || e.len > best.len)) best = e;
        assert.equal(m.lookup4(a), best ? best.id : null);
      }
    }), { numRuns: 500 });
});

test('prefix map: rejects bad prefix lengths and duplicates', () => {
  const m = new PrefixMap<number>(32);
  assert.throws(() => m.rebuild([{ words: [0], prefix: 33, value: 1 }]), /prefix length 33 out of range 0\.\.32/);
  assert.throws(() => m.rebuild([{ words: [ip4Int('10.0.0.0')], prefix: 8, value: 1 }, { words: [ip4Int('10.1.0.0')], prefix: 8, value: 2 }]), /duplicate prefix \/8/);
  m.rebuild([{ words: [0, 0, 0, 0], prefix: 0, value: 9 }]);
  assert.equal(m.lookup4(ip4Int('8.8.8.8')), 9, 'default route');
  assert.equal(m.size, 1);
});
