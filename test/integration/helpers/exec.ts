// Running external commands from tests and benches: bounded by a timeout, with errors that show
// the command line, its exit status and its stderr.
import { execFile } from 'node:child_process';

export interface RunOptions {
  /** Killed with SIGKILL after this long (default 30 s). */
  timeoutMs?: number;
  /** When false, a non-zero exit resolves (see `code`) instead of rejecting. Default true. */
  check?: boolean;
  /** Aborting kills the command (SIGKILL) and rejects. */
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; non-zero only when `check: false`. */
  code: number;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const check = opts.check ?? true;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8', signal: opts.signal },
      (err, stdout, stderr) => {
        if (err === null) return resolve({ stdout, stderr, code: 0 });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const line = [cmd, ...args].join(' ');
        if (e.name === 'AbortError') return reject(new Error(`aborted: ${line}`));
        if (e.code === 'ENOENT') return reject(new Error(`\`${cmd}\` not found (needed for: ${line})`));
        if (e.killed) return reject(new Error(`timed out after ${timeoutMs} ms: ${line}\n${stderr.trim()}`));
        if (!check && typeof e.code === 'number') return resolve({ stdout, stderr, code: e.code });
        reject(new Error(`command failed (exit ${String(e.code)}): ${line}\n${stderr.trim() || stdout.trim()}`));
      });
  });
}

/** `ip ARGS...` */
export const ip = (...args: string[]): Promise<RunResult> => run('ip', args);

/** Runs a command inside a network namespace (`ip netns exec NS CMD ARGS...`). */
export function inNetns(netns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], opts);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
