// A client for the daemon's local HTTP API, for the read commands of the CLI.
import { request } from 'node:http';
import { DEFAULT_API_ADDRESS, parseApiAddress } from './server.js';

export class DaemonUnreachableError extends Error {
  readonly code = 'SLUICE_DAEMON_UNREACHABLE';
}

/** GETs a JSON route of the daemon at `address` ("HOST:PORT" or "unix:/path"). */
export function getJson<T>(address: string, path: string, timeoutMs = 5000): Promise<T> {
  const addr = parseApiAddress(address);
  const target = addr.kind === 'unix' ? { socketPath: addr.path } : { host: addr.host, port: addr.port };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        try {
          const parsed = JSON.parse(body) as T & { error?: string };
          if ((res.statusCode ?? 500) >= 400 && res.statusCode !== 503) reject(new Error(`${path}: ${parsed.error ?? res.statusCode}`));
          else resolve(parsed);
        } catch {
          reject(new Error(`${path}: the daemon answered with something that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const where = addr.kind === 'unix' ? addr.path : `${addr.host}:${addr.port}`;
      const flag = address === DEFAULT_API_ADDRESS ? '' : ` --api ${address}`;
      reject(new DaemonUnreachableError(
        `daemon not running on ${where} (${err.code ?? err.message}) — start it with ` +
        `\`sluice daemon --config FILE --host NAME${flag}\`, or point --api at it`));
    });
    req.end();
  });
}
