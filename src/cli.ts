#!/usr/bin/env node
// The `sluice` command line: one program, subcommands registered by the module
// that owns each job.
import { Command } from 'commander';
import { registerDaemonCommand } from './daemon/cli.js';
import { registerLabCommands } from './lab/cli.js';
import { registerPolicyCommands } from './api/policy-cli.js';
import { registerOpsCommands } from './api/ops-cli.js';
import { registerResourceCommands } from './api/resource-cli.js';
import { registerCompletionCommand } from './api/completion-cli.js';
import { addManual } from './api/manual.js';
import { registerBenchCommand } from './api/bench-cli.js';

const program = new Command('sluice')
  .description('Userspace network dataplane: TUN endpoints, UDP overlay (vxlan/udp), Calico and Kubernetes policy')
  .showHelpAfterError();

registerDaemonCommand(program);
registerLabCommands(program);
registerPolicyCommands(program);
registerOpsCommands(program);
registerResourceCommands(program);
registerBenchCommand(program);
registerCompletionCommand(program);
addManual(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
