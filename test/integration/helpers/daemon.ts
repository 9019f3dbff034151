// Starting a Sluice daemon for one host inside that host's namespace and waiting for it:
//   ip netns exec NETNS node dist/src/cli.js daemon --config FILE --host H --ready-file F
// The daemon writes F once its endpoints are up and stops cleanly on SIGTERM (removing its TUN
// devices); the scope sends that SIGTERM by PID.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './exec.js';
import { Proc, describe } from './process.js';
import type { Scope } from './scope.js';
import { DAEMON_NODE_FLAGS } from '../../../src/daemon/node-flags.js';

/** dist/src/cli.js, relative to this file once compiled (dist/test/integration/helpers/). */
export const CLI_PATH = fileURLToPath(new URL('../../../src/cli.js', import.meta.url));

export interface DaemonOptions {
  netns: string;
  configFile: string;
  host: string;
  /** Directory for the ready file. */
  dir: string;
  readyTimeoutMs?: number;
  logLevel?: string;
  /** Extra node options before the script, e.g. ['--trace-gc'] or ['--cpu-prof']. */
  nodeArgs?: readonly string[];
}

export async function startDaemon(scope: Scope, o: DaemonOptions): Promise<Proc> {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} not found: build first (npx tsc -p .)`);
  const readyFile = join(o.dir, `${o.host}.ready`);
  const args = [...DAEMON_NODE_FLAGS, ...(o.nodeArgs ?? []), CLI_PATH, 'daemon', '--config', o.configFile, '--host', o.host, '--ready-file', readyFile];
  if (o.logLevel) args.push('--log-level', o.logLevel);
  const p = Proc.start(scope, process.execPath, args, { netns: o.netns, label: `sluice daemon ${o.host}` });
  const timeoutMs = o.readyTimeoutMs ?? 20_000;
  const end = Date.now() + timeoutMs;
  while (!existsSync(readyFile)) {
    if (p.exit) throw new Error(`${p.label} ${describe(p.exit)} before it was ready\n${p.tail()}`);
    if (Date.now() > end) throw new Error(`${p.label} not ready after ${timeoutMs} ms\n${p.tail()}`);
    await sleep(50);
  }
  return p;
}
