// Long-running child processes (daemons, servers) that a test or bench starts and must stop:
// stopped by their own PID (SIGTERM, then SIGKILL), never by name. `ip netns exec` execs the
// command in place, so the PID of `ip netns exec NS CMD` is CMD's PID.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Scope } from './scope.js';

/** Keep at most this much of a child's output (the tail), for error messages. */
const OUTPUT_CAP = 256 << 10;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly label: string;
  stdout = '';
  stderr = '';
  exit: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  #listeners = new Set<() => void>();

  /** Spawns CMD ARGS (inside NETNS when given); stopped when the scope closes. */
  static start(scope: Scope | undefined, cmd: string, args: readonly string[], o: { netns?: string; label?: string } = {}): Proc {
    // Checked before spawning, so a process is never started that nobody would stop.
    if (scope?.closed) throw new Error(`not starting ${cmd}: cleanup has begun`);
    const argv = o.netns ? ['netns', 'exec', o.netns, cmd, ...args] : [...args];
    const p = new Proc(spawn(o.netns ? 'ip' : cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }), o.label ?? `${cmd}${o.netns ? ` in ${o.netns}` : ''}`);
    scope?.defer(`stop ${p.label} (pid ${p.pid})`, () => p.stop());
    return p;
  }

  private constructor(child: ChildProcess, label: string) {
    if (child.pid === undefined) throw new Error(`could not spawn ${label}`);
    this.child = child;
    this.pid = child.pid;
    this.label = label;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout = cap(this.stdout + s); this.#notify(); });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr = cap(this.stderr + s); this.#notify(); });
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.stderr += `\nspawn error: ${err.message}`;
        this.exit ??= { code: -1, signal: null };
        this.#notify();
        resolve(this.exit);
      });
      // 'close' (not 'exit'): stdout/stderr are fully read by then.
      child.on('close', (code, signal) => {
        this.exit ??= { code, signal };
        this.#notify();
        resolve(this.exit);
      });
    });
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }

  /** Waits until `stream` matches `re`; rejects if the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this[stream].match(re);
        if (m) return done(() => resolve(m));
        if (this.exit) done(() => reject(new Error(`${this.label} exited (${describe(this.exit!)}) before printing ${re}\n${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.label}: no ${re} after ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        f();
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Waits for exit; rejects after `timeoutMs` (the process keeps running; stop() it). */
  async wait(timeoutMs: number): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label} still running after ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with how it ended; safe to call twice. */
  async stop(graceMs = 5000): Promise<'exited' | 'killed'> {
    if (this.exit) return 'exited';
    this.child.kill('SIGTERM');
    try {
      await this.wait(graceMs);
      return 'exited';
    } catch {
      this.child.kill('SIGKILL');
      await this.wait(5000);
      return 'killed';
    }
  }

  /** The last lines of output, indented, for error messages. */
  tail(lines = 20): string {
    const out = `${this.stdout}\n${this.stderr}`.trim().split('\n').slice(-lines);
    return out.map((l) => `  | ${l}`).join('\n') || '  (no output)';
  }
}

export function describe(e: ExitInfo): string {
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

function cap(s: string): string {
  return s.length > OUTPUT_CAP ? s.slice(s.length - OUTPUT_CAP) : s;
}
