// A flood of malformed and hostile packets never crashes the daemon and is
// counted by reason: fuzzed inner packets (fast-check) through a well-formed
// VXLAN header from a known peer, random datagrams on the UDP port, and the same
// fuzzed packets written straight into a workload's TUN from inside its pod
// (an AF_PACKET socket bypasses the pod kernel's own checks).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { canRunNetworkTests, inNetns, Lab, nodeIn } from './support/lab.js';

const skip = canRunNetworkTests();

/** IPv4 and IPv6 packets with one thing wrong, or nothing: bad IHL, lengths, checksums, fragments, protocols, truncation. */
function arbPacket(src: number[], dst: number[]): fc.Arbitrary<Uint8Array> {
  const v4 = fc.record({
    ihl: fc.integer({ min: 0, max: 15 }),
    totalDelta: fc.integer({ min: -30, max: 30 }),
    proto: fc.constantFrom(1, 6, 17, 47, 132, 253, 0),
    frag: fc.constantFrom(0, 0x2000, 0x0010, 0x4000),
    ttl: fc.integer({ min: 0, max: 255 }),
    payload: fc.uint8Array({ minLength: 0, maxLength: 80 }),
    cut: fc.integer({ min: 0, max: 120 }),
    csum: fc.integer({ min: 0, max: 0xffff }),
  }).map(({ ihl, totalDelta, proto, frag, ttl, payload, cut, csum }) => {
    const hl = Math.max(ihl, 5) * 4;
    const b = new Uint8Array(hl + payload.length);
    b[0] = 0x40 | ihl;
    const total = Math.max(0, b.length + totalDelta);
    b[2] = total >> 8; b[3] = total & 255;
    b[6] = frag >> 8; b[7] = frag & 255;
    b[8] = ttl; b[9] = proto; b[10] = csum >> 8; b[11] = csum & 255;
    b.set(src, 12); b.set(dst, 16);
    b.set(payload, hl);
    return b.subarray(0, Math.min(b.length, cut === 0 ? b.length : cut));
  });
  const v6 = fc.record({
    next: fc.constantFrom(0, 43, 44, 60, 51, 6, 17, 58, 59),
    plenDelta: fc.integer({ min: -20, max: 20 }),
    payload: fc.uint8Array({ minLength: 0, maxLength: 80 }),
  }).map(({ next, plenDelta, payload }) => {
    const b = new Uint8Array(40 + payload.length);
    b[0] = 0x60; const plen = Math.max(0, payload.length + plenDelta);
    b[4] = plen >> 8; b[5] = plen & 255; b[6] = next; b[7] = 64;
    b[8] = 0xfd; b[23] = 1; b[24] = 0xfd; b[39] = 2;
    b.set(payload, 40);
    return b;
  });
  return fc.oneof(v4, v6, fc.uint8Array({ minLength: 0, maxLength: 60 }));
}

const hex = (packets: Uint8Array[]) => packets.map((p) => Buffer.from(p).toString('hex')).join('\n');

describe('fuzzed floods', { skip, concurrency: false }, () => {
  const name = `slfz${process.pid % 100000}`;
  let lab: Lab;
  before(async () => { lab = await Lab.up(name); });
  after(async () => { await lab?.down(); });

  it('on the underlay: counted, never a crash', { timeout: 60_000 }, async () => {
    const before = await lab.stats('h2');
    const h1pod = lab.pod('h1-a').ip.split('.').map(Number), h2pod = lab.pod('h2-a').ip.split('.').map(Number);
    const packets = fc.sample(arbPacket(h1pod, h2pod), { numRuns: 3000, seed: 4242 });
    const junk = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 200 }), { numRuns: 500, seed: 7 });
    const send = await inNetns(lab.host('h1').netns, [process.execPath, '--input-type=module', '-e', `
      import dgram from 'node:dgram'; import { readFileSync } from 'node:fs';
      const [inner, raw] = readFileSync(0, 'utf8').split('\\n==\\n').map((s) => s.split('\\n').filter(Boolean).map((h) => Buffer.from(h, 'hex')));
      const vx = Buffer.from('0800000000000100' + '02000af40200' + '02000af40100' + '0800', 'hex');
      const s = dgram.createSocket('udp4');
      s.bind(0, '10.99.0.1', async () => {
        const all = [...inner.map((p) => { const h = Buffer.from(vx); if (p.length && p[0] >> 4 === 6) h.writeUInt16BE(0x86dd, 20); return Buffer.concat([h, p]); }), ...raw];
        for (let i = 0; i < all.length; i++) { s.send(all[i], 8472, '${lab.host('h2').underlayIP}'); if (i % 50 === 49) await new Promise((r) => setTimeout(r, 2)); }
        setTimeout(() => s.close(), 300);
      });`], 30_000, `${hex(packets)}\n==\n${hex(junk)}`);
    assert.equal(send.code, 0, send.stderr);
    await new Promise((r) => setTimeout(r, 500));
    const after = await lab.stats('h2');
    const delta = (reason: string) => after.drops[reason] - before.drops[reason];
    const malformed = ['Malformed', 'Truncated', 'BadVersion', 'BadHeaderLength', 'BadTotalLength', 'BadExtHeader', 'BadL4']
      .reduce((n, r) => n + delta(r), 0);
    assert.ok(malformed > 500, `malformed counted: ${malformed}`);
    assert.ok(delta('BadOverlayFlags') + delta('Truncated') + delta('BadVni') + delta('WrongMac') + delta('BadEthertype') > 0, 'junk counted');
    const ping = await lab.exec('h1-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', lab.pod('h2-a').ip]);
    assert.equal(ping.code, 0, 'the daemon still forwards');
  });

  it('from a workload: counted, never a crash', { timeout: 60_000 }, async () => {
    const before = await lab.stats('h1');
    const own = lab.pod('h1-a').ip.split('.').map(Number), other = lab.pod('h2-b').ip.split('.').map(Number);
    const packets = fc.sample(arbPacket(own, other), { numRuns: 3000, seed: 99 });
    const inject = await inNetns(lab.pod('h1-a').netns, ['python3', '-c', `
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
sent = 0
for i, line in enumerate(sys.stdin.read().split()):
    try:
        s.send(bytes.fromhex(line)); sent += 1
    except OSError:
        pass
    if i % 50 == 49: time.sleep(0.002)
print(sent)`], 30_000, hex(packets.filter((p) => p.length > 0)));
    assert.equal(inject.code, 0, inject.stderr);
    assert.ok(Number(inject.stdout) > 2000, `injected ${inject.stdout}`);
    await new Promise((r) => setTimeout(r, 500));
    const after = await lab.stats('h1');
    const total = (s: typeof before) => Object.values(s.drops).reduce((a, b) => a + b, 0);
    assert.ok(total(after) - total(before) > 1000, `drops counted: ${total(after) - total(before)}`);
    const alive = await nodeIn(lab.host('h1').netns, "const r = await fetch('http://127.0.0.1:9765/healthz'); process.stdout.write(String(r.status));");
    assert.equal(alive.stdout, '200');
    const ping = await lab.exec('h1-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', lab.pod('h2-b').ip]);
    assert.equal(ping.code, 0, 'the daemon still forwards');
  });
});
