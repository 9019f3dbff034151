// The per-packet paths must not allocate. Run them a few million times under a
// GC observer: even 16 bytes per packet would fill the young generation many
// times over and force scavenges; allocation-free code causes none.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Drop, DropCounters } from '../../src/packet/drop.js';
import { FlowKey } from '../../src/packet/flow-key.js';
import { FlowKeyParser } from '../../src/packet/flow-key-parser.js';
import { Ipv4View } from '../../src/packet/ipv4.js';
import { PeerTable } from '../../src/overlay/peer-table.js';
import { UdpBackend } from '../../src/overlay/udp-encap.js';
import { VxlanBackend } from '../../src/overlay/vxlan.js';
import { buildIpv6, icmp4Echo, ip4Int, tcp4, withHeadroom } from './packet-fixtures.js';
import { gcsDuring } from './gc-count.js';

const ITERATIONS = 2_000_000;

test('hot paths allocate nothing per packet', async () => {
  const table = new PeerTable(8472, [
    { name: 'a', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64', vtepMAC: '02:00:0a:f4:01:00' },
    { name: 'b', publicIP: '192.168.99.2', subnet: '10.244.2.0/24', ipv6Subnet: 'fd00:10:244:2::/64', vtepMAC: '02:00:0a:f4:02:00' },
  ]);
  const a = table.get('a')!, b = table.get('b')!;
  const local = { vtepMac: a.vtepMac };
  const vxA = new VxlanBackend({ local });
  const vxB = new VxlanBackend({ local: { vtepMac: b.vtepMac } });
  const udp = new UdpBackend({ local });
  const parser = new FlowKeyParser();
  const key = new FlowKey(), other = new FlowKey();
  const drops = new DropCounters();
  const ip4 = new Ipv4View();
  const pkts = [
    withHeadroom(tcp4('10.244.1.5', '10.244.2.7', 40000, 443, 0x12, Buffer.alloc(64)), 22),
    withHeadroom(icmp4Echo('10.244.1.5', '10.244.2.7', 7, 1), 22),
    withHeadroom(buildIpv6({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::7', ext: [{ type: 0 }, { type: 60 }] },
      { kind: 'udp', sport: 5353, dport: 53 }, Buffer.alloc(40)), 22),
  ];
  const lens = pkts.map((p) => p.length - 22);
  const dst4 = ip4Int('10.244.2.7');

  let sink = 0;
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const j = i % 3;
      const buf = pkts[j], len = lens[j];
      const r = parser.parse(buf, 22, len, key);
      if (r !== Drop.None) { drops.count(r); continue; }
      sink ^= key.hash() ^ key.hashSymmetric();
      other.copyFrom(key).reverse();
      if (other.equals(key)) sink++;
      const peer = key.family === 4 ? table.lookupByDst4(key.dst0) : table.lookupByDst6(parser.ip6);
      if (peer === null) { drops.count(Drop.NoRoute); continue; }
      if (table.lookupByUnderlay(0xc0a86302, 40000 + j) !== b) throw new Error('underlay lookup');
      const start = vxA.encap(buf, 22, len, peer, local);
      const inner = vxB.decap(buf, start, len + 22, a);
      if (inner !== 22) throw new Error(`decap ${inner}`);
      if (udp.decap(buf, 22, len, a) < 0) throw new Error('udp decap');
      if (key.family === 4) {
        ip4.reset(buf, 22);
        ip4.decrementTtl();
        buf[22 + 8] = 64; // restore the TTL; the checksum is patched again below
        ip4.updateChecksum();
      }
      sink += table.lookupByDst4(dst4 ^ (i & 0xff)) === null ? 1 : 0;
    }
  };

  let ns = 0;
  const gcs = await gcsDuring((n) => {
    const t0 = process.hrtime.bigint();
    run(n);
    ns = Number(process.hrtime.bigint() - t0);
  }, ITERATIONS);
  assert.equal(drops.total(), 0);
  assert.ok(sink !== 0.5); // keep `sink` alive
  assert.equal(gcs, 0, `${gcs} garbage collections during ${ITERATIONS} packets: something allocates per packet`);
  // Informational: the whole pipeline per packet (not a benchmark; bench/ owns those).
  console.log(`${(ns / ITERATIONS).toFixed(0)} ns/packet for parse+hash+lookup+encap+decap`);
});
