// A tiny TCP sender/receiver that hashes what it moves, run inside a namespace:
//   node tcp-tool.js recv BIND_IP PORT [TIMEOUT_MS]        prints "listening", then {"bytes","sha256"} of what arrived
//   node tcp-tool.js send DST_IP PORT BYTES [TIMEOUT_MS]   sends BYTES random bytes, prints {"bytes","sha256"} of what it sent
// Comparing the two JSON lines proves every byte crossed intact. Exit 0 on success, 1 on a
// socket error, 2 on timeout.
import { createHash, randomFillSync } from 'node:crypto';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';

const CHUNK = 64 << 10;

function fail(code: number, msg: string): never {
  process.stderr.write(`tcp-tool: ${msg}\n`);
  process.exit(code);
}

function deadline(ms: number, what: string): void {
  setTimeout(() => fail(2, `${what}: timed out after ${ms} ms`), ms).unref();
}

function recv(bindIp: string, port: number, timeoutMs: number): void {
  deadline(timeoutMs, `recv on ${bindIp}:${port}`);
  const server = createServer((sock) => {
    server.close(); // one connection only
    const hash = createHash('sha256');
    let bytes = 0;
    sock.on('data', (d: Buffer) => { bytes += d.length; hash.update(d); });
    sock.on('end', () => {
      process.stdout.write(`${JSON.stringify({ bytes, sha256: hash.digest('hex') })}\n`);
      sock.end();
      process.exit(0);
    });
    sock.on('error', (e) => fail(1, `recv: ${e.message}`));
  });
  server.on('error', (e) => fail(1, `listen ${bindIp}:${port}: ${e.message}`));
  server.listen(port, bindIp, () => process.stdout.write('listening\n'));
}

function send(dst: string, port: number, total: number, timeoutMs: number): void {
  deadline(timeoutMs, `send to ${dst}:${port}`);
  const hash = createHash('sha256');
  let sent = 0;
  const sock = connect(port, dst);
  const pump = () => {
    while (sent < total) {
      const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(CHUNK, total - sent)));
      hash.update(chunk);
      sent += chunk.length;
      if (!sock.write(chunk)) return void sock.once('drain', pump);
    }
    sock.end();
  };
  sock.on('connect', pump);
  sock.on('data', () => undefined); // the receiver sends nothing; drain anyway
  sock.on('close', (hadError) => {
    if (hadError) return;
    process.stdout.write(`${JSON.stringify({ bytes: sent, sha256: hash.digest('hex') })}\n`);
    process.exit(0);
  });
  sock.on('error', (e) => fail(1, `send to ${dst}:${port}: ${e.message}`));
}

function main(argv: string[]): void {
  const [mode, addr, portText, a, b] = argv;
  const port = Number(portText);
  if (!addr || !Number.isInteger(port) || port < 1 || port > 65535) fail(1, `usage: recv IP PORT [MS] | send IP PORT BYTES [MS]`);
  if (mode === 'recv') return recv(addr, port, Number(a ?? 60_000));
  if (mode === 'send') {
    const bytes = Number(a);
    if (!Number.isInteger(bytes) || bytes < 0) fail(1, `send: BYTES must be a non-negative integer, got ${a}`);
    return send(addr, port, bytes, Number(b ?? 60_000));
  }
  fail(1, `unknown mode ${mode}; expected recv or send`);
}

export const TCP_TOOL_PATH = fileURLToPath(import.meta.url);

if (process.argv[1] === TCP_TOOL_PATH) main(process.argv.slice(2));
