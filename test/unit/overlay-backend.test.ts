import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Drop } from '../../src/packet/drop.js';
import { backends, createBackend } from '../../src/overlay/backend.js';
import { Peer } from '../../src/overlay/peer.js';
import { UDP_DEFAULT_PORT, UdpBackend } from '../../src/overlay/udp-encap.js';
import { VxlanBackend } from '../../src/overlay/vxlan.js';
import { tcp4, udp6, withHeadroom } from './packet-fixtures.js';

const local = { vtepMac: Buffer.from('02000af40100', 'hex') };
const peer = new Peer({ name: 'a', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64', vtepMAC: '02:00:0a:f4:01:00' }, 8285);

test('backend registry: explicit, both backends, unknown type named', () => {
  assert.deepEqual([...backends.keys()].sort(), ['udp', 'vxlan']);
  const v = createBackend('vxlan', { local });
  assert.ok(v instanceof VxlanBackend);
  const u = backends.get('udp')!({ local });
  assert.ok(u instanceof UdpBackend);
  assert.deepEqual([u.type, u.port, u.headroom, u.overhead], ['udp', UDP_DEFAULT_PORT, 0, 28]);
  assert.equal(UDP_DEFAULT_PORT, 8285);
  assert.throws(() => createBackend('host-gw', { local }), { name: 'TypeError', message: 'backend.type: unknown backend "host-gw" (expected one of vxlan, udp)' });
  assert.throws(() => createBackend('udp', { local, port: 65536 }), { message: 'udp: port must be an integer in 1..65535, got 65536' });
});

test('udp backend: the raw IP packet is the UDP payload', () => {
  const u = new UdpBackend({ local });
  const inner = tcp4('10.244.1.9', '10.244.2.1', 1, 2, 2, Buffer.from('data'));
  const buf = withHeadroom(inner, 5);
  const before = Buffer.from(buf);
  assert.equal(u.encap(buf, 5, inner.length, peer, local), 5, 'nothing in front');
  assert.deepEqual(buf, before, 'nothing written');
  assert.equal(u.decap(buf, 5, inner.length, peer), 5);
  const v6 = udp6('fd00:10:244:1::9', 'fd00:10:244:2::1', 1, 2);
  assert.equal(u.decap(v6, 0, v6.length, peer), 0);
});

test('udp backend: decap drops spoofed, non-IP and short packets', () => {
  const u = new UdpBackend({ local });
  const spoof = tcp4('10.244.9.9', '10.244.2.1', 1, 2);
  assert.equal(u.decap(spoof, 0, spoof.length, peer), -Drop.Spoofed);
  const spoof6 = udp6('fd00:10:244:9::9', 'fd00:10:244:2::1', 1, 2);
  assert.equal(u.decap(spoof6, 0, spoof6.length, peer), -Drop.Spoofed);
  assert.equal(u.decap(Buffer.from([0x12, 0, 0, 0]), 0, 4, peer), -Drop.BadVersion);
  assert.equal(u.decap(Buffer.alloc(0), 0, 0, peer), -Drop.Truncated);
  const ok = tcp4('10.244.1.9', '10.244.2.1', 1, 2);
  assert.equal(u.decap(ok, 0, 19, peer), -Drop.Truncated);
  assert.equal(u.decap(ok, 0, ok.length + 1, peer), -Drop.Truncated);
  assert.equal(u.encap(Buffer.from([0x55]), 0, 1, peer, local), -Drop.BadVersion);
});
