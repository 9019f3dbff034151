// One Sluice daemon per lab host, started inside the host's netns and detached from us:
//   ip netns exec <hostns> <node> <cli.js> daemon --config <cluster.yaml> --host h<i> --ready-file <dir>/h<i>.ready
// or, in an etcd lab, `daemon --store etcd --etcd URL --public-ip <underlay IP> --host h<i> ...`.
// `ip netns exec` execs in place, so the PID we get is the daemon's. The daemon writes the ready
// file once its devices are up; we wait for every one, bounded.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../daemon/node-flags.js';
import { LabError } from './errors.js';
import { procStartTime } from './procs.js';
import type { LabDaemon, LabHost, LabState } from './state.js';

/** dist/src/cli.js, next to this file's directory once compiled. */
export const DEFAULT_CLI_PATH = fileURLToPath(new URL('../cli.js', import.meta.url));

export const readyFileOf = (stateDir: string, host: string): string => join(stateDir, `${host}.ready`);
export const logFileOf = (stateDir: string, host: string): string => join(stateDir, `${host}.log`);

export interface StartedDaemon {
  daemon: LabDaemon;
  child: ChildProcess;
  readyFile: string;
  /** Set when the process exits (before we stop caring). */
  exit?: string;
}

/** How a daemon finds the cluster: `--config FILE`, or `--store etcd --etcd URL --public-ip IP`. */
export function storeArgs(state: LabState, host: LabHost): string[] {
  if (state.store !== 'etcd') return ['--config', state.clusterFile];
  if (state.etcd === undefined) throw new LabError(`lab ${state.name}: an etcd lab without an etcd URL in its state`);
  return ['--store', 'etcd', '--etcd', state.etcd.url, '--public-ip', host.underlayIP];
}

/**
 * What in a daemon's command line says it is this lab's (with its PID and start time): the CLI and
 * the cluster file, or in an etcd lab (no cluster file) its ready file, which is in the state dir.
 */
export function daemonNeedles(state: LabState, host: string): string[] {
  return [state.cliPath, state.store === 'etcd' ? readyFileOf(state.stateDir, host) : state.clusterFile];
}

export function daemonArgs(cliPath: string, store: readonly string[], host: string, readyFile: string, extra: readonly string[] = []): string[] {
  return [process.execPath, ...DAEMON_NODE_FLAGS, cliPath, 'daemon', ...store, '--host', host, '--ready-file', readyFile, ...extra];
}

export function startDaemon(stateDir: string, cliPath: string, store: readonly string[], host: LabHost, extra: readonly string[] = []): StartedDaemon {
  if (!existsSync(cliPath)) throw new LabError(`${cliPath} not found: build Sluice first (npx tsc -p .)`);
  const readyFile = readyFileOf(stateDir, host.name);
  const log = logFileOf(stateDir, host.name);
  const fd = openSync(log, 'a', 0o644);
  let child: ChildProcess;
  try {
    child = spawn('ip', ['netns', 'exec', host.netns, ...daemonArgs(cliPath, store, host.name, readyFile, extra)], {
      detached: true, // own session: survives `lab up` exiting and terminal hangups
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new LabError(`could not start the daemon for ${host.name}: spawn failed (is \`ip\` installed?)`);
  const started: StartedDaemon = {
    daemon: { host: host.name, pid, startTime: procStartTime(pid) ?? -1, log },
    child,
    readyFile,
  };
  child.on('exit', (code, sig) => {
    started.exit = sig !== null ? `killed by ${sig}` : `exited with code ${code}`;
  });
  child.on('error', (e) => {
    started.exit = `failed to start: ${e.message}`;
  });
  child.unref();
  return started;
}

/**
 * Waits until every daemon has written its ready file. Throws a LabError naming the first host
 * that exited or did not get ready in time, with the tail of its log.
 */
export async function waitReady(daemons: readonly StartedDaemon[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const dead = daemons.find((d) => d.exit !== undefined && !existsSync(d.readyFile));
    if (dead !== undefined) throw notReady(dead, `the daemon ${dead.exit}`);
    const waiting = daemons.filter((d) => !existsSync(d.readyFile));
    if (waiting.length === 0) return;
    if (Date.now() >= end) throw notReady(waiting[0], `the daemon was not ready after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function notReady(d: StartedDaemon, why: string): LabError {
  return new LabError(`host ${d.daemon.host}: ${why}; last lines of ${d.daemon.log}:\n${tail(d.daemon.log, 20)}`);
}

export function tail(file: string, lines: number): string {
  try {
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).map((l) => `  | ${l}`).join('\n') || '  (empty)';
  } catch {
    return '  (no log)';
  }
}
