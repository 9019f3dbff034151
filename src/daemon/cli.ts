// `sluice daemon`: runs the dataplane of one host until SIGINT/SIGTERM.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { pino, type Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { Daemon } from './daemon.js';
import { DEFAULT_API_ADDRESS, parseApiAddress } from '../api/server.js';
import { ALL_OFFLOADS, NO_OFFLOADS, type Offloads } from '../dataplane/offloads.js';
import { realtimeFromEnv } from '../dataplane/scheduling.js';
import { missingNodeFlags } from './node-flags.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function intIn(lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < lo || n > hi) throw new InvalidArgumentError(`expected an integer ${lo}..${hi}`);
    return n;
  };
}

/** "all", "none" or a comma list of tun, gso, gro. */
function offloadList(v: string): Offloads {
  const t = v.trim().toLowerCase();
  if (t === 'all') return { ...ALL_OFFLOADS };
  if (t === 'none') return { ...NO_OFFLOADS };
  const o: Offloads = { ...NO_OFFLOADS };
  for (const part of t.split(',')) {
    if (part !== 'tun' && part !== 'gso' && part !== 'gro') {
      throw new InvalidArgumentError(`unknown offload "${part}": expected all, none or a comma list of tun, gso, gro`);
    }
    o[part] = true;
  }
  return o;
}

interface DaemonFlags {
  store: 'file' | 'etcd'; config?: string; etcd: string; etcdPrefix: string; publicIp?: string; leaseTtl: number;
  host: string; readyFile?: string; api: string; apiAllowRemote: boolean; logLevel: string;
  policyMode: 'pool' | 'inline'; flowCacheSize: number; heldPackets: number; logAllowed: boolean;
  datapathThreads: number; mainFastPath?: boolean; persistTun: boolean; offloads?: Offloads; fastPath: boolean; fastPathTtl?: number; realtime?: number;
  busyPoll: number;
}

/** The store the flags ask for; in etcd mode this host's subnet lease is acquired first, Flannel's way. */
async function openStore(o: DaemonFlags, log: Logger, restart: (why: string) => void): Promise<{ store: Store; source: string }> {
  if (o.store === 'file') {
    if (!o.config) throw new Error('--config FILE is required with --store file');
    const { FileStore } = await import('../store/file-store.js');
    return { store: new FileStore(o.config), source: `${o.config} manifests` };
  }
  if (!o.publicIp) throw new Error('--public-ip is required with --store etcd (the underlay address is this host\'s identity)');
  // Loaded only in etcd mode: the gRPC client costs ~16 MB of memory a file-store daemon does not need.
  const { EtcdStore } = await import('../store/etcd-store.js');
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
    .option('--flow-cache-size <n>', 'most flows the flow cache holds (CLOCK eviction beyond)', positiveInt, 1_000_000)
    .option('--held-packets <n>', 'packets of new flows held while their verdict is pending (beyond: dropped, counted as PolicyHeldQueueFull; each costs 2 KiB)', intIn(1, 1_000_000), 1024)
    .option('--log-allowed', 'also log allowed new flows (denied ones are always logged, rate-limited)', false)
    .option('--datapath-threads <n>', 'data path threads: each endpoint TUN gets one queue per thread, the underlay one socket (SO_REUSEPORT)', intIn(1, 64), 1)
    .option('--no-main-fast-path', 'with --datapath-threads 2 or more: forward decided flows only on the native threads, the JS thread keeps the slow path (lower latency tails)')
    .option('--persist-tun', 'keep endpoint TUN devices when the daemon stops; a restarted daemon re-attaches to them (needs CAP_SYS_ADMIN for pods in other namespaces)', false)
    .option('--offloads <list>', 'kernel offloads: all, none, or a comma list of tun,gso,gro (default: all, or SLUICE_OFFLOADS*)', offloadList)
    .option('--no-fast-path', 'forward every packet through the JS pipeline (no native fast path for decided flows)')
    .option('--fast-path-ttl <ms>', 'how long a decided flow is forwarded natively before the policy gate sees it again (default 5000, or SLUICE_FASTPATH_TTL_MS)', intIn(1, 600_000))
    .option('--realtime <priority>', 'run the data path SCHED_FIFO at this priority 1..99 (needs CAP_SYS_NICE; 0: normal)', intIn(0, 99))
    .option('--busy-poll <us>', 'with --datapath-threads 2 or more: the native threads keep polling this many µs after a packet instead of sleeping (lower latency for request/response traffic, at the cost of CPU; 0: off)', intIn(0, 1_000_000), 0)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (opts: DaemonFlags) => {
      if (opts.busyPoll > 0 && opts.datapathThreads < 2) {
        throw new InvalidArgumentError('--busy-poll needs --datapath-threads 2 or more (only the native datapath threads busy-poll)');
      }
      if (opts.busyPoll > 0 && (opts.realtime ?? realtimeFromEnv()) > 0) {
        throw new InvalidArgumentError('--busy-poll cannot be combined with --realtime (or SLUICE_REALTIME): a SCHED_FIFO thread that spins starves the other tasks on its CPU');
      }
      const api = opts.api === 'off' ? undefined : parseApiAddress(opts.api);
      const log = pino({ level: opts.logLevel, base: { host: opts.host } });
      const missing = missingNodeFlags();
      if (missing.length) log.warn({ missing }, 'node was started without the daemon\'s V8 flags: memory use is higher (src/daemon/node-flags.ts)');
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
        policy: { mode: opts.policyMode, cache: { max: opts.flowCacheSize }, held: { capacity: opts.heldPackets }, flowLog: { logAllowed: opts.logAllowed } },
        datapathThreads: opts.datapathThreads, datapathMain: opts.mainFastPath === false ? false : undefined, persistTun: opts.persistTun, offloads: opts.offloads, realtime: opts.realtime,
        busyPollUs: opts.busyPoll,
        // Flags win over the SLUICE_FASTPATH* environment; undefined leaves it to the environment.
        fastPath: !opts.fastPath ? null : opts.fastPathTtl !== undefined ? { ttlMs: opts.fastPathTtl } : undefined,
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
