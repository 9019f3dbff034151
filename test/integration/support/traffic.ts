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
