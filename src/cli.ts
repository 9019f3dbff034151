#!/usr/bin/env -S node --max-semi-space-size=2
// The `sluice` command line: one program, subcommands registered by the module
// that owns each job.
import { Command } from 'commander';
import { registerDaemonCommand } from './daemon/cli.js';
import { addManual } from './api/manual.js';

const program = new Command('sluice')
  .description('Userspace network dataplane: TUN endpoints, UDP overlay (vxlan/udp), Calico and Kubernetes policy')
  .showHelpAfterError();

registerDaemonCommand(program);
// The daemon runs for months: it does not load the other commands' dependencies
// (the etcd/gRPC client of `apply` and `lab`, ~16 MB resident), only its own.
if (process.argv[2] !== 'daemon') {
  const [lab, policy, ops, resource, bench, completion] = await Promise.all([
    import('./lab/cli.js'), import('./api/policy-cli.js'), import('./api/ops-cli.js'), import('./api/resource-cli.js'),
    import('./api/bench-cli.js'), import('./api/completion-cli.js'),
  ]);
  lab.registerLabCommands(program);
  policy.registerPolicyCommands(program);
  ops.registerOpsCommands(program);
  resource.registerResourceCommands(program);
  bench.registerBenchCommand(program);
  completion.registerCompletionCommand(program);
}
addManual(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
