// `sluice daemon`: runs the dataplane of one host until SIGINT/SIGTERM.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { pino } from 'pino';
import { FileStore } from '../store/file-store.js';
import { Daemon } from './daemon.js';
import { DEFAULT_API_ADDRESS, parseApiAddress } from '../api/server.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description('run the dataplane of one host: endpoints, overlay and policy')
    .requiredOption('-c, --config <file>', 'cluster YAML file (the embedded file store)')
    .requiredOption('--host <name>', 'which host of the config this daemon is')
    .option('--ready-file <path>', 'write this file once every endpoint is up')
    .option('--api <address>', `HTTP API address, HOST:PORT or unix:/path ("off" to disable)`, DEFAULT_API_ADDRESS)
    .option('--api-allow-remote', 'let the HTTP API answer clients that are not on this host', false)
    .addOption(new Option('--policy-mode <mode>', 'evaluate new flows in a worker pool or inline on the I/O thread').choices(['pool', 'inline']).default('pool'))
    .option('--flow-cache-size <n>', 'most flows the flow cache holds (LRU beyond)', positiveInt, 1_000_000)
    .option('--log-allowed', 'also log allowed new flows (denied ones are always logged, rate-limited)', false)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (opts: { config: string; host: string; readyFile?: string; api: string; logLevel: string;
      policyMode: 'pool' | 'inline'; flowCacheSize: number; logAllowed: boolean; apiAllowRemote: boolean }) => {
      const api = opts.api === 'off' ? undefined : parseApiAddress(opts.api);
      const log = pino({ level: opts.logLevel, base: { host: opts.host } });
      const store = new FileStore(opts.config);
      const daemon = new Daemon({
        store, hostName: opts.host, log, readyFile: opts.readyFile, api, apiAllowRemote: opts.apiAllowRemote, source: `${opts.config} manifests`,
        policy: { mode: opts.policyMode, cache: { max: opts.flowCacheSize }, flowLog: { logAllowed: opts.logAllowed } },
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        daemon.stop().then(() => process.exit(0), (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      try {
        await daemon.start();
      } catch (err) {
        log.fatal({ err }, 'daemon failed to start');
        await daemon.stop();
        throw err;
      }
    });
}
