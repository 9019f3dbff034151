// Thin wrapper over iproute2: the daemon configures links, addresses and routes
// with `ip`, the tool operators already read and trust.
import { execFile } from 'node:child_process';

export class IpCommandError extends Error {
  readonly code = 'SLUICE_IP_COMMAND';
  constructor(readonly args: readonly string[], readonly stderr: string) {
    super(`ip ${args.join(' ')} failed: ${stderr.trim() || 'no output'}`);
  }
}

/** Runs `ip ARGS...`; rejects with IpCommandError carrying ip's own message. */
export function ip(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(missing ? new Error('`ip` not found: install iproute2') : new IpCommandError(args, stderr || err.message));
      } else resolve(stdout);
    });
  });
}

/** `ip -n NETNS ...` when a namespace is given, plain `ip ...` otherwise. */
export function ipIn(netns: string | undefined, ...args: string[]): Promise<string> {
  return netns ? ip('-n', netns, ...args) : ip(...args);
}

interface IpAddrJson { ifname: string; mtu: number; addr_info?: { local: string }[] }

/** The MTU of the interface that holds `address` in the current namespace, or undefined. */
export async function mtuOfAddress(address: string): Promise<number | undefined> {
  const links = JSON.parse(await ip('-j', 'addr', 'show')) as IpAddrJson[];
  const link = links.find((l) => l.addr_info?.some((a) => a.local === address));
  return link?.mtu;
}
