// Identifying and stopping processes safely: a PID alone may have been reused since we recorded
// it, so a process counts as ours only when its start time and command line still match.
import { readFileSync } from 'node:fs';

/** Start time (field 22 of /proc/<pid>/stat, clock ticks since boot); undefined when gone. */
export function procStartTime(pid: number): number | undefined {
  const stat = readProc(pid, 'stat');
  if (stat === undefined) return undefined;
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]);
}

/** Process state letter (R, S, Z, ...); undefined when gone. */
export function procState(pid: number): string | undefined {
  const stat = readProc(pid, 'stat');
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

export function procCmdline(pid: number): string[] | undefined {
  const raw = readProc(pid, 'cmdline');
  return raw === undefined ? undefined : raw.split('\0').filter((s) => s !== '');
}

/** Alive and not a zombie. */
export function isRunning(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
}

/** True when `pid` is still the process recorded: same start time and every `needles` in its argv. */
export function isSameProcess(pid: number, startTime: number, needles: readonly string[]): boolean {
  if (!isRunning(pid) || procStartTime(pid) !== startTime) return false;
  const argv = procCmdline(pid);
  return argv !== undefined && needles.every((n) => argv.includes(n));
}

/**
 * SIGTERM, wait up to `graceMs` for exit, then SIGKILL and wait again. Returns how it ended.
 * The caller must have checked that the PID is one it may signal.
 */
export async function terminate(pid: number, graceMs: number): Promise<'exited' | 'killed' | 'gone' | 'stuck'> {
  if (!signal(pid, 'SIGTERM')) return 'gone';
  if (await waitExit(pid, graceMs)) return 'exited';
  if (!signal(pid, 'SIGKILL')) return 'exited';
  return (await waitExit(pid, 2000)) ? 'killed' : 'stuck';
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (isRunning(pid)) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}
