// `sluice daemon`: runs the dataplane of one host until SIGINT/SIGTERM.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { pino, type Logger } from 'pino';
import { FileStore } from '../store/file-store.js';
import { EtcdStore } from '../store/etcd-store.js';
import type { Store } from '../store/store.js';
import type { Daemon } from './daemon.js';
import { DEFAULT_API_ADDRESS, parseApiAddress } from '../api/server.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

interface DaemonFlags {
  store: 'file' | 'etcd'; config?: string; etcd: string; etcdPrefix: string; publicIp?: string; leaseTtl: number;
  host: string; readyFile?: string; api: string; apiAllowRemote: boolean; logLevel: string;
  policyMode: 'pool' | 'inline'; flowCacheSize: number; logAllowed: boolean;
}

/** The store the flags ask for; in etcd mode this host's subnet lease is acquired first, Flannel's way. */
async function openStore(o: DaemonFlags, log: Logger, restart: (why: string) => void): Promise<{ store: Store; source: string }> {
  if (o.store === 'file') {
    if (!o.config) throw new Error('--config FILE is required with --store file');
    return { store: new FileStore(o.config), source: `${o.config} manifests` };
  }
  if (!o.publicIp) throw new Error('--public-ip is required with --store etcd (the underlay address is this host\'s identity)');
  const store = new EtcdStore({ endpoints: o.etcd.split(','), prefix: o.etcdPrefix, log: log.child({ component: 'etcd' }) });
  try {
    const lease = await store.acquireLease({ publicIP: o.publicIp, hostName: o.host, ttlSeconds: o.leaseTtl });
    log.info({ subnet: lease.current()?.subnet, key: lease.current()?.key }, 'subnet lease acquired');
    lease.onEvent((e) => {
      if (e.type === 'acquired' && e.changed) restart(`subnet lease re-acquired with a different subnet (${e.lease.subnet})`);
      else log.warn({ event: e.type, reason: 'reason' in e ? e.reason : undefined }, 'subnet lease');
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  return { store, source: `etcd ${o.etcd}` };
}

export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description('run the dataplane of one host: endpoints, overlay and policy')
    .requiredOption('--host <name>', 'which host this daemon is (file store: a name under hosts:)')
    .addOption(new Option('--store <kind>', 'where cluster state lives').choices(['file', 'etcd']).default('file'))
    .option('-c, --config <file>', 'cluster YAML file (the embedded file store)')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated (--store etcd)', 'http://127.0.0.1:2379')
    .option('--etcd-prefix <prefix>', 'Flannel key prefix (--store etcd)', '/coreos.com/network')
    .option('--public-ip <ip>', 'this host\'s underlay IPv4 address (--store etcd)')
    .option('--lease-ttl <seconds>', 'subnet lease TTL (--store etcd; Flannel: 24 h)', positiveInt, 86_400)
    .option('--ready-file <path>', 'write this file once every endpoint is up')
    .option('--api <address>', `HTTP API address, HOST:PORT or unix:/path ("off" to disable)`, DEFAULT_API_ADDRESS)
    .option('--api-allow-remote', 'let the HTTP API answer clients that are not on this host', false)
    .addOption(new Option('--policy-mode <mode>', 'evaluate new flows in a worker pool or inline on the I/O thread').choices(['pool', 'inline']).default('pool'))
    .option('--flow-cache-size <n>', 'most flows the flow cache holds (LRU beyond)', positiveInt, 1_000_000)
    .option('--log-allowed', 'also log allowed new flows (denied ones are always logged, rate-limited)', false)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (opts: DaemonFlags) => {
      const api = opts.api === 'off' ? undefined : parseApiAddress(opts.api);
      const log = pino({ level: opts.logLevel, base: { host: opts.host } });
      let daemon: Daemon | undefined;
      let stopping = false;
      const stop = (signal: string, code = 0) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        (daemon?.stop() ?? Promise.resolve()).then(() => process.exit(code), (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        });
      };
      // Node passes the signal's number as a second argument: it is not an exit code.
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      // A host whose subnet moved cannot keep its endpoints' addresses: exit and let the supervisor restart us.
      const { store, source } = await openStore(opts, log, (why) => { log.fatal(why); stop('subnet-changed', 75); });
      // Loaded here, not at the top: only the daemon needs the native addon, not every sluice command.
      const { Daemon } = await import('./daemon.js');
      daemon = new Daemon({
        store, hostName: opts.host, log, readyFile: opts.readyFile, api, apiAllowRemote: opts.apiAllowRemote, source,
        policy: { mode: opts.policyMode, cache: { max: opts.flowCacheSize }, flowLog: { logAllowed: opts.logAllowed } },
      });
      try {
        await daemon.start();
      } catch (err) {
        log.fatal({ err }, 'daemon failed to start');
        await daemon.stop();
        throw err;
      }
    });
}
