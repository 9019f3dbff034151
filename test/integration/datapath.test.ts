// The data path end to end, on a real two-host lab: TUN endpoints in pod
// namespaces, daemons in host namespaces, the overlay on a veth/bridge underlay.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { canRunNetworkTests, Lab, netnsWithPrefix, nodeIn, run } from './support/lab.js';
import { expectedSha256, tcpTransfer, udpEcho } from './support/traffic.js';

const skip = canRunNetworkTests();

for (const backend of ['vxlan', 'udp'] as const) {
  describe(`data path, ${backend} backend`, { skip, concurrency: false }, () => {
    const name = `sldp${backend[0]}${process.pid % 100000}`;
    let lab: Lab;
    before(async () => { lab = await Lab.up(name, ['--backend', backend, '--ipv6']); });
    after(async () => {
      await lab?.down();
      assert.deepEqual(await netnsWithPrefix(`${name}-`), [], 'lab down leaves no namespace behind');
    });

    it('pings a pod on the other host', async () => {
      const r = await lab.exec('h1-a', ['ping', '-c', '3', '-i', '0.2', '-W', '2', lab.pod('h2-a').ip]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 received/);
    });

    it('pings a pod on the same host (switched by the daemon)', async () => {
      const r = await lab.exec('h1-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', lab.pod('h1-b').ip]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    it('carries IPv6 between hosts', async () => {
      const r = await lab.exec('h2-b', ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', lab.pod('h1-b').ipv6!]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    it('moves a 4 MB TCP stream across hosts intact, both ways', async () => {
      const size = 4 << 20;
      const there = await tcpTransfer(lab.pod('h1-a').netns, lab.pod('h2-b').netns, lab.pod('h2-b').ip, 7001, size, 42);
      assert.equal(there.receivedSha, expectedSha256(size, 42), there.server.stderr + there.client.stderr);
      const back = await tcpTransfer(lab.pod('h2-b').netns, lab.pod('h1-a').netns, lab.pod('h1-a').ip, 7002, size, 7);
      assert.equal(back.receivedSha, expectedSha256(size, 7), back.server.stderr + back.client.stderr);
    });

    it('echoes UDP datagrams of many sizes across hosts', async () => {
      const r = await udpEcho(lab.pod('h2-a').netns, lab.pod('h1-b').netns, lab.pod('h1-b').ip, 7003, 200);
      assert.equal(r.echoed, 200, r.client.stderr);
    });
  });
}

describe('data path: ICMP errors, anti-spoofing, malformed input', { skip, concurrency: false }, () => {
  const name = `sldpe${process.pid % 100000}`;
  let lab: Lab;
  before(async () => { lab = await Lab.up(name); });
  after(async () => { await lab?.down(); });

  it('answers a DF packet larger than the tunnel MTU with "fragmentation needed"', async () => {
    const pod = 'h1-a';
    await lab.exec(pod, ['ip', 'link', 'set', 'eth0', 'mtu', '9000']);
    try {
      const r = await lab.exec(pod, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '3000', lab.pod('h2-a').ip]);
      assert.match(r.stdout, /Frag needed and DF set \(mtu = 1450\)/);
    } finally {
      await lab.exec(pod, ['ip', 'link', 'set', 'eth0', 'mtu', '1450']);
    }
    const ok = await lab.exec(pod, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', String(1450 - 28), lab.pod('h2-a').ip]);
    assert.equal(ok.code, 0, 'a packet of exactly the MTU passes');
  });

  it('answers an unknown destination with "host unreachable"', async () => {
    const r = await lab.exec('h1-a', ['ping', '-c', '1', '-W', '2', '10.244.200.9']);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /Destination Host Unreachable/);
  });

  it('answers TTL 1 with "time to live exceeded"', async () => {
    const r = await lab.exec('h1-a', ['ping', '-c', '1', '-W', '2', '-t', '1', lab.pod('h2-a').ip]);
    assert.match(r.stdout, /Time to live exceeded/);
  });

  it('drops and counts malformed and foreign datagrams on the underlay, and keeps forwarding', async () => {
    const h2 = lab.host('h2');
    const before = await lab.stats('h2');
    // From h1 (a known peer) and from an address no peer has.
    const h1ns = lab.host('h1').netns;
    await run('ip', ['-n', h1ns, 'addr', 'add', '10.99.0.250/24', 'dev', 'eth0']);
    const send = await nodeIn(h1ns, `
      import dgram from 'node:dgram';
      const vx = (vni, flags = 0x08) => { const b = Buffer.alloc(8); b[0] = flags; b.writeUIntBE(vni, 4, 3); return b; };
      const eth = Buffer.from('02000af40200' + '02000af40100' + '0800', 'hex');
      const ip = (src) => { const b = Buffer.alloc(28); b[0] = 0x45; b.writeUInt16BE(28, 2); b[8] = 64; b[9] = 17;
        b.writeUInt32BE(src, 12); b.writeUInt32BE(0x0af40202, 16); return b; };
      const datagrams = [
        Buffer.alloc(3),                                            // truncated VXLAN header
        Buffer.concat([vx(1, 0x00), eth, ip(0x0af40102)]),          // I flag clear
        Buffer.concat([vx(99), eth, ip(0x0af40102)]),               // wrong VNI
        Buffer.concat([vx(1), eth, Buffer.from([0x45, 0, 0])]),     // truncated inner IPv4
        Buffer.concat([vx(1), eth, ip(0x0af40702)]),                // inner source outside h1's subnet
      ];
      const send = (addr, list) => new Promise((res) => { const s = dgram.createSocket('udp4');
        s.bind(0, addr, () => { let n = 0; for (const d of list) s.send(d, 8472, '${h2.underlayIP}', () => { if (++n === list.length) { s.close(); res(); } }); }); });
      for (let i = 0; i < 20; i++) await send('10.99.0.1', datagrams);
      await send('10.99.0.250', [Buffer.concat([vx(1), eth, ip(0x0af40102)])]);`);
    assert.equal(send.code, 0, send.stderr);
    await new Promise((r) => setTimeout(r, 300));
    const afterStats = await lab.stats('h2');
    const grew = (reason: string, n: number) =>
      assert.ok(afterStats.drops[reason] - before.drops[reason] >= n, `${reason}: ${before.drops[reason]} → ${afterStats.drops[reason]}`);
    grew('Truncated', 20);
    grew('BadOverlayFlags', 20);
    grew('BadVni', 20);
    grew('Spoofed', 20);
    grew('UnknownPeer', 1);
    const total = (s: typeof before) => Object.values(s.drops).reduce((a, b) => a + b, 0);
    assert.ok(total(afterStats) - total(before) >= 101, 'every bad datagram is counted once');
    const ping = await lab.exec('h1-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', lab.pod('h2-a').ip]);
    assert.equal(ping.code, 0, 'the daemon still forwards');
  });

  it('drops packets a workload sends with a source address that is not its own', async () => {
    const before = await lab.stats('h1');
    // A second address on the pod's interface lets the pod's kernel send from it.
    const pod = lab.pod('h1-a');
    await lab.exec('h1-a', ['ip', 'addr', 'add', '10.244.1.99/32', 'dev', 'eth0']);
    const r = await lab.exec('h1-a', ['ping', '-c', '2', '-i', '0.2', '-W', '1', '-I', '10.244.1.99', lab.pod('h2-a').ip]);
    assert.notEqual(r.code, 0, 'spoofed pings get no answer');
    await lab.exec('h1-a', ['ip', 'addr', 'del', '10.244.1.99/32', 'dev', 'eth0']);
    const afterStats = await lab.stats('h1');
    assert.ok(afterStats.drops.Spoofed - before.drops.Spoofed >= 2, `Spoofed counted on ${pod.host}`);
  });
});
