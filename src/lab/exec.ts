// `lab exec POD -- CMD...`: run a command inside a pod's (or a host's) network namespace.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { LabError } from './errors.js';
import { underlayNetns } from './names.js';
import { DEFAULT_STATE_ROOT, type LabState, loadState } from './state.js';

/** Finds the namespace for `ns/pod`, `pod` (when unique), a host name such as `h1`, or `ul` (the underlay). */
export function resolveTarget(state: LabState, target: string): { netns: string; what: string } {
  const slash = target.indexOf('/');
  const pods = slash >= 0
    ? state.pods.filter((p) => p.namespace === target.slice(0, slash) && p.name === target.slice(slash + 1))
    : state.pods.filter((p) => p.name === target);
  if (pods.length === 1) return { netns: pods[0].netns, what: `pod ${pods[0].namespace}/${pods[0].name}` };
  if (pods.length > 1) {
    throw new LabError(`pod name ${target} is ambiguous in lab ${state.name}: ${pods.map((p) => `${p.namespace}/${p.name}`).join(', ')}; use namespace/pod`);
  }
  const host = state.hosts.find((h) => h.name === target);
  if (host !== undefined) return { netns: host.netns, what: `host ${host.name}` };
  // The underlay: where an etcd lab's etcd listens (`sluice lab exec ul -- sluice get hosts --etcd URL`).
  if (target === 'ul') return { netns: underlayNetns(state.name), what: 'the underlay' };
  const known = state.pods.map((p) => `${p.namespace}/${p.name}`).join(', ');
  throw new LabError(`no pod ${target} in lab ${state.name} (pods: ${known || 'none'}; hosts: ${state.hosts.map((h) => h.name).join(', ')}; underlay: ul)`);
}

export function requireLab(name: string, stateRoot = DEFAULT_STATE_ROOT): LabState {
  const state = loadState(stateRoot, name);
  if (state === undefined) throw new LabError(`no lab named ${name}; start one with \`sluice lab up${name === 'sluice' ? '' : ` --name ${name}`}\``);
  return state;
}

/** Runs the command with inherited stdio; resolves to its exit code (128+n when killed by signal n). */
export async function labExec(name: string, target: string, cmd: readonly string[], stateRoot = DEFAULT_STATE_ROOT): Promise<number> {
  if (cmd.length === 0) throw new LabError('lab exec: no command given (usage: sluice lab exec POD -- CMD [ARGS...])');
  const state = requireLab(name, stateRoot);
  const { netns } = resolveTarget(state, target);
  const child = spawn('ip', ['netns', 'exec', netns, ...cmd], { stdio: 'inherit' });
  // The terminal sends ^C to the whole foreground group; the child decides, we report its code.
  const ignore = (): void => {};
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new LabError(`lab exec: cannot run ip netns exec: ${e.message}`, 1, { cause: e })));
      child.on('exit', (code, sig) => resolve(code ?? 128 + (sig !== null ? constants.signals[sig] : 0)));
    });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
  }
}
