// Running external commands (`ip`), with errors that show the command and its stderr.
import { execFile } from 'node:child_process';
import { LabError } from './errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with a LabError naming the command and its output when it fails. */
export function run(cmd: string, args: readonly string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ stdout, stderr });
        return;
      }
      const e = err as NodeJS.ErrnoException & { code?: string | number };
      if (e.code === 'ENOENT') {
        reject(new LabError(`\`${cmd}\` not found${cmd === 'ip' ? ': install iproute2 (e.g. apt-get install iproute2)' : ''}`, 1, { cause: err }));
        return;
      }
      const why = stderr.trim() || e.message;
      reject(new LabError(`command failed: ${[cmd, ...args].join(' ')}\n  ${why}`, 1, { cause: err }));
    });
  });
}

/** `ip ARGS...` */
export function ip(...args: string[]): Promise<RunResult> {
  return run('ip', args);
}

/** Names of all network namespaces (`ip netns list`), without the `(id: N)` suffix. */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await ip('netns', 'list');
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n !== undefined && n !== '');
}

/** Deletes a network namespace; true when it existed. */
export async function deleteNetns(name: string): Promise<boolean> {
  try {
    await ip('netns', 'del', name);
    return true;
  } catch (e) {
    if (/No such file|not found|Invalid argument/i.test((e as Error).message)) return false;
    throw e;
  }
}

/** PIDs of processes inside a network namespace (`ip netns pids`). */
export async function netnsPids(name: string): Promise<number[]> {
  try {
    const { stdout } = await ip('netns', 'pids', name);
    return stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
  } catch {
    return [];
  }
}
