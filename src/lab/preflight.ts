// Checks done before touching anything: root, and iproute2's `ip` with netns support.
import { LabError } from './errors.js';
import { ip } from './run.js';

export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError(`sluice lab ${what} must run as root (it creates network namespaces and links); try: sudo sluice lab ${what} ...`);
  }
}

export async function requireIp(): Promise<void> {
  try {
    await ip('-V');
  } catch (e) {
    if (e instanceof LabError && e.message.startsWith('`ip` not found')) throw e;
    throw new LabError(`\`ip -V\` failed; is iproute2 installed? (${(e as Error).message})`, 1, { cause: e });
  }
}
