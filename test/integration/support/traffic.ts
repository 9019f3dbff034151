// Real traffic between pods, as node scripts run inside pod namespaces: a TCP
// transfer checked byte for byte, and a UDP echo checked datagram by datagram.
import { createHash } from 'node:crypto';
import { inNetns, nodeIn, type RunResult } from './lab.js';

/** Deterministic payload of `size` bytes, the same in the test and in the pods. */
export const PAYLOAD_SCRIPT = (size: number, seed: number) => `
  const buf = Buffer.alloc(${size}); let x = ${seed} >>> 0;
  for (let i = 0; i < buf.length; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; buf[i] = x >>> 24; }`;

export function expectedSha256(size: number, seed: number): string {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let i = 0; i < buf.length; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; buf[i] = x >>> 24; }
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Sends `size` bytes over TCP from one netns to `ip:port` in another and returns
 * the sha256 the receiver computed (or the failure).
 */
export async function tcpTransfer(fromNetns: string, toNetns: string, ip: string, port: number, size: number, seed: number):
  Promise<{ receivedSha: string; server: RunResult; client: RunResult }> {
  const server = nodeIn(toNetns, `
    import net from 'node:net'; import { createHash } from 'node:crypto';
    const srv = net.createServer((s) => { const h = createHash('sha256'); let n = 0;
      s.on('data', (d) => { h.update(d); n += d.length; });
      s.on('end', () => { process.stdout.write(h.digest('hex') + ' ' + n); s.end(); srv.close(); }); });
    srv.listen(${port}, '${ip}', () => process.stderr.write('listening\\n'));
    setTimeout(() => { process.stderr.write('server timeout'); process.exit(3); }, 25000).unref();`, [], 30_000);
  await waitForListen(toNetns, port);
  const client = await nodeIn(fromNetns, `
    import net from 'node:net'; ${PAYLOAD_SCRIPT(size, seed)}
    const s = net.connect(${port}, '${ip}', () => s.end(buf));
    s.on('error', (e) => { process.stderr.write(String(e)); process.exit(2); }); s.resume();`, [], 30_000);
  const srv = await server;
  return { receivedSha: srv.stdout.split(' ')[0], server: srv, client };
}

export async function waitForListen(netns: string, port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await inNetns(netns, ['ss', '-Hltn', `sport = :${port}`]);
    if (r.stdout.trim() !== '') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`nothing listening on ${port} in ${netns}`);
}

/** Sends `count` UDP datagrams of varied sizes to an echo server; returns how many came back intact. */
export async function udpEcho(fromNetns: string, toNetns: string, ip: string, port: number, count: number):
  Promise<{ echoed: number; client: RunResult }> {
  const server = nodeIn(toNetns, `
    import dgram from 'node:dgram'; const s = dgram.createSocket('udp4'); let n = 0;
    s.on('message', (m, r) => { s.send(m, r.port, r.address); if (++n === ${count}) setTimeout(() => s.close(), 200); });
    s.bind(${port}, '${ip}'); setTimeout(() => s.close(), 15000).unref();`, [], 20_000);
  await new Promise((res) => setTimeout(res, 300));
  const client = await nodeIn(fromNetns, `
    import dgram from 'node:dgram'; const s = dgram.createSocket('udp4'); const sent = new Map(); let ok = 0;
    s.on('message', (m) => { const id = m.readUInt32BE(0); const want = sent.get(id);
      if (want && want.equals(m)) { ok++; sent.delete(id); } if (ok === ${count}) done(); });
    const done = () => { process.stdout.write(String(ok)); s.close(); };
    // Paced in bursts of 10: a pod's socket buffer (rmem_default) holds little more than that.
    s.bind(0, async () => { for (let i = 0; i < ${count}; i++) {
      const m = Buffer.alloc(4 + ((i * 37) % 1300)); m.fill(i & 255); m.writeUInt32BE(i, 0); sent.set(i, m); s.send(m, ${port}, '${ip}');
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5)); } });
    setTimeout(done, 5000).unref();`, [], 20_000);
  await server;
  return { echoed: Number(client.stdout) || 0, client };
}

/**
 * A python3 script that writes `n` IPv4 TCP SYNs src -> dst with distinct ports into the
 * namespace's eth0 (a pod's TUN) via AF_PACKET: each one a new flow for the daemon. A full
 * queue (ENOBUFS) is waited out, so all `n` are sent; it pauses `pauseS` after every `every`.
 * Prints how many it sent.
 */
export const synFloodScript = (src: string, dst: string, n: number, every = 200, pauseS = 0.002) => `
import socket, struct, time
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))
src, dst = socket.inet_aton('${src}'), socket.inet_aton('${dst}')
sent = 0
for i in range(${n}):
    sport, dport = 10000 + i % 50000, 20000 + i // 50000
    tcp = struct.pack('!HHIIBBHHH', sport, dport, i, 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xffff, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    while True:
        try:
            s.send(ip + tcp); sent += 1; break
        except OSError:
            time.sleep(0.0005)
    if i % ${every} == ${every - 1}: time.sleep(${pauseS})
print(sent)`;
