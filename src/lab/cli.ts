// `sluice lab up|down|exec|status|restart`. registerLabCommands() is called by the main CLI (src/cli.ts).
import { Command, InvalidArgumentError, Option } from 'commander';
import { StoreError } from '../store/errors.js';
import { labDown } from './down.js';
import { LabError } from './errors.js';
import { labExec, requireLab } from './exec.js';
import { DEFAULT_LAB_NAME, checkLabName } from './names.js';
import { requireIp, requireRoot } from './preflight.js';
import { labRestart } from './restart.js';
import { DEFAULT_STATE_ROOT, listLabs } from './state.js';
import { labStatus } from './status.js';
import { summaryJson, summaryText } from './summary.js';
import { labUp } from './up.js';

/** SLUICE_LAB_DIR moves the state root (default /run/sluice-lab). */
const stateRoot = (): string => process.env.SLUICE_LAB_DIR ?? DEFAULT_STATE_ROOT;
const progress = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

const nameArg = (v: string): string => {
  try {
    return checkLabName(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

/** Runs an action, turning known errors into a message and an exit code. */
function action<A extends unknown[]>(verb: string, fn: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (e) {
      if (e instanceof LabError || e instanceof StoreError) {
        process.stderr.write(`sluice lab ${verb}: ${e.message}\n`);
        process.exitCode = e instanceof LabError ? e.exitCode : 1;
      } else {
        process.stderr.write(`sluice lab ${verb}: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
        process.exitCode = 1;
      }
    }
  };
}

export function registerLabCommands(program: Command): Command {
  const lab = program
    .command('lab')
    .description('build a network lab on this machine: hosts and pods in network namespaces, one daemon per host')
    .enablePositionalOptions();

  lab
    .command('up')
    .description('create a lab: underlay bridge, N hosts, pods (demo or -f manifests), one daemon per host')
    .addOption(new Option('--hosts <n>', 'number of hosts').argParser(intArg(1, 254)).default(2))
    .addOption(new Option('--backend <type>', 'overlay encapsulation').choices(['vxlan', 'udp']).default('vxlan'))
    .option('-f, --file <path>', 'Kubernetes manifests (Namespace, Pod, policies): file or directory; repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--name <name>', 'lab name; prefixes every namespace', nameArg, DEFAULT_LAB_NAME)
    .option('--ipv6', 'also give hosts and pods IPv6 addresses', false)
    .option('--json', 'print the lab as JSON (for scripts)', false)
    .option('--no-daemons', 'build namespaces, underlay, pods and cluster.yaml, but start no daemons')
    .option('--daemon-arg <flag>', 'pass a flag to every daemon, e.g. --daemon-arg=--policy-mode=inline; repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the daemons to get ready').argParser(intArg(1, 3600)).default(20))
    .addOption(new Option('--store <kind>', 'where the daemons read the cluster: file (cluster.yaml) or etcd (subnet leases, `sluice apply`)').choices(['file', 'etcd']).default('file'))
    .option('--etcd <url>', 'with --store etcd: use this etcd (reachable from the host namespaces, e.g. unix:///path) instead of starting one on the underlay')
    .action(action('up', async (opts: { hosts: number; backend: 'vxlan' | 'udp'; file: string[]; name: string; ipv6: boolean; json: boolean; daemons: boolean; daemonArg: string[]; timeout: number; store: 'file' | 'etcd'; etcd?: string }) => {
      const ac = new AbortController();
      const abort = (): void => ac.abort();
      process.once('SIGINT', abort);
      process.once('SIGTERM', abort);
      try {
        const state = await labUp({
          name: opts.name, hosts: opts.hosts, backend: opts.backend, ipv6: opts.ipv6, files: opts.file,
          daemons: opts.daemons, daemonArgs: opts.daemonArg, readyTimeoutMs: opts.timeout * 1000, stateRoot: stateRoot(), log: progress, signal: ac.signal,
          store: opts.store, etcdUrl: opts.etcd,
        });
        process.stdout.write(opts.json ? `${JSON.stringify(summaryJson(state), null, 2)}\n` : `${summaryText(state)}\n`);
      } finally {
        process.off('SIGINT', abort);
        process.off('SIGTERM', abort);
      }
    }));

  lab
    .command('down')
    .description('stop the daemons and remove every namespace, link and file of a lab (also after a crash)')
    .option('--name <name>', 'lab name', nameArg, DEFAULT_LAB_NAME)
    .option('--all', 'remove every lab that has a state directory', false)
    .action(action('down', async (opts: { name: string; all: boolean }) => {
      requireRoot('down');
      await requireIp();
      const names = opts.all ? listLabs(stateRoot()) : [opts.name];
      if (names.length === 0) progress('no labs found; nothing to do');
      for (const name of names) {
        const r = await labDown({ name, stateRoot: stateRoot(), log: progress });
        if (!r.found) progress(`no lab named ${name}; nothing to do`);
        else {
          const stopped = r.daemons.filter((d) => d.result !== 'not running').length;
          const etcd = r.etcd !== undefined && r.etcd.result !== 'not running' ? ', etcd stopped' : '';
          progress(`lab ${name} removed: ${stopped} daemon(s) stopped${etcd}, ${r.netnsDeleted.length} namespace(s) deleted`);
        }
      }
    }));

  lab
    .command('exec')
    .description('run a command in a pod\'s network namespace (or a host\'s, given h1, h2, ...)')
    .usage('[--name NAME] POD -- CMD [ARGS...]')
    .argument('<pod>', 'namespace/pod, or pod when the name is unique, or a host name')
    .argument('[cmd...]', 'the command and its arguments')
    .option('--name <name>', 'lab name', nameArg, DEFAULT_LAB_NAME)
    .passThroughOptions()
    .action(action('exec', async (pod: string, cmd: string[], opts: { name: string }) => {
      requireRoot('exec');
      return labExec(opts.name, pod, cmd[0] === '--' ? cmd.slice(1) : cmd, stateRoot());
    }));

  lab
    .command('restart')
    .description('restart a host\'s daemon with the flags it was started with (waits for it and its pods), or the lab\'s etcd')
    .argument('<target...>', 'host names (h1, h2, ...) and/or etcd')
    .option('--name <name>', 'lab name', nameArg, DEFAULT_LAB_NAME)
    .addOption(new Option('--timeout <seconds>', 'how long to wait for a daemon and its pods').argParser(intArg(1, 3600)).default(20))
    .action(action('restart', async (targets: string[], opts: { name: string; timeout: number }) => {
      requireRoot('restart');
      await labRestart(opts.name, targets, { stateRoot: stateRoot(), readyTimeoutMs: opts.timeout * 1000, log: progress });
    }));

  lab
    .command('status')
    .description('show a lab: hosts, pods, daemons, and anything missing')
    .option('--name <name>', 'lab name', nameArg, DEFAULT_LAB_NAME)
    .option('--json', 'print as JSON', false)
    .action(action('status', async (opts: { name: string; json: boolean }) => {
      requireLab(opts.name, stateRoot());
      const status = await labStatus(opts.name, stateRoot());
      if (status === undefined) return 1;
      process.stdout.write(opts.json
        ? `${JSON.stringify({ ...summaryJson(status.state, status), complete: status.state.complete, missingNetns: status.missingNetns, strayNetns: status.strayNetns }, null, 2)}\n`
        : `${summaryText(status.state, status)}\n`);
      return undefined;
    }));

  return lab;
}
