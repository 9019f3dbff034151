// Network namespaces and the shared underlay used by integration tests and benches:
//
//   underlay netns UL: bridge br0 ── veth PORT ══ eth0 (ADDR/24) in host netns H
//
// The veth is created inside the underlay namespace with its peer sent straight into the host
// namespace, so nothing ever appears in the root namespace. Deleting a namespace deletes its
// links, so namespaces are the only thing that needs undoing.
import { existsSync } from 'node:fs';
import { ip, run } from './exec.js';
import type { Scope } from './scope.js';

/** Names of all network namespaces, without the "(id: N)" suffix. */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await ip('netns', 'list');
  return stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n): n is string => !!n);
}

/** PIDs of the processes inside a namespace. */
export async function netnsPids(name: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', name], { check: false });
  return stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

export async function deleteNetns(name: string): Promise<void> {
  const r = await run('ip', ['netns', 'del', name], { check: false });
  if (r.code !== 0 && !/No such file|not found/i.test(r.stderr)) {
    throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
  }
}

/** Creates a namespace with `lo` up; deleted when the scope closes. */
export async function addNetns(scope: Scope, name: string): Promise<string> {
  if (name.length > 64 || !/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad netns name ${JSON.stringify(name)}`);
  await ip('netns', 'add', name);
  scope.defer(`delete netns ${name}`, () => deleteNetns(name));
  await ip('-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

/** A namespace holding one bridge (`br0`) that host namespaces attach to. */
export async function createUnderlay(scope: Scope, name: string, bridge = 'br0'): Promise<string> {
  await addNetns(scope, name);
  await ip('-n', name, 'link', 'add', bridge, 'type', 'bridge');
  await ip('-n', name, 'link', 'set', bridge, 'up');
  return name;
}

export interface AttachOptions {
  /** Bridge port name in the underlay namespace (≤ 15 chars, unique there). */
  port: string;
  /** Address with prefix for the host side, e.g. "10.99.0.1/24". */
  address: string;
  /** Interface name in the host namespace (default eth0). */
  ifname?: string;
  bridge?: string;
  mtu?: number;
}

/** Joins a host namespace to the underlay bridge with a veth pair and configures its address. */
export async function attachToUnderlay(underlay: string, host: string, o: AttachOptions): Promise<void> {
  const ifname = o.ifname ?? 'eth0';
  await ip('-n', underlay, 'link', 'add', o.port, 'type', 'veth', 'peer', 'name', ifname, 'netns', host);
  await ip('-n', underlay, 'link', 'set', o.port, 'master', o.bridge ?? 'br0', 'up');
  if (o.mtu !== undefined) {
    await ip('-n', underlay, 'link', 'set', o.port, 'mtu', String(o.mtu));
    await ip('-n', host, 'link', 'set', ifname, 'mtu', String(o.mtu));
  }
  await ip('-n', host, 'addr', 'add', o.address, 'dev', ifname);
  await ip('-n', host, 'link', 'set', ifname, 'up');
}

/**
 * The namespace prefix of this run: PREFIX + our PID + "-" (e.g. "slkv-4242-"). Two runs of the
 * same test or bench (two engineers, or `npm test` next to a bench) then never share a name, and
 * a leftover can be traced to the run that made it.
 */
export function runPrefix(prefix: string): string {
  return `${prefix}${process.pid}-`;
}

/**
 * Removes namespaces that earlier runs left behind. A name PREFIX<pid>-… (see runPrefix) is
 * removed only when <pid> is dead; a live run's namespaces are never touched, so concurrent runs
 * are safe. Other names under PREFIX (no pid tag) are treated as leftovers. A namespace that
 * still holds processes is never removed (we do not kill what we did not start): its name is
 * returned in `busy` so the caller can refuse to start with a clear message.
 */
export async function sweepStale(prefix: string): Promise<{ removed: string[]; busy: string[] }> {
  const removed: string[] = [];
  const busy: string[] = [];
  const tagged = /^(\d+)-/;
  for (const ns of await listNetns()) {
    if (!ns.startsWith(prefix)) continue;
    const pid = tagged.exec(ns.slice(prefix.length))?.[1];
    if (pid !== undefined && (Number(pid) === process.pid || existsSync(`/proc/${pid}`))) continue; // a live run's
    if ((await netnsPids(ns)).length > 0) busy.push(ns);
    else {
      await deleteNetns(ns);
      removed.push(ns);
    }
  }
  return { removed, busy };
}
