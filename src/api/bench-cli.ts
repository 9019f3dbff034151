// `sluice bench`: the benchmark of issue 5, run from the installed command (the work is done in
// bench/sluice-bench.ts). Progress goes to stderr; the table (or JSON) to stdout.
import type { Command } from 'commander';

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure pod-to-pod TCP/UDP throughput and ping latency through Sluice, the kernel\'s VXLAN, OpenVPN and tinc (needs root)')
    .option('--seconds <n>', 'length of each iperf3 test', '5')
    .option('--repeat <n>', 'repetitions (medians are reported)', '3')
    .option('--systems <list>', 'comma-separated: sluice-vxlan, sluice-udp, kernel-vxlan, openvpn, tinc, ' +
      'sluice-vxlan-nooffload, sluice-vxlan-baseline, sluice-vxlan-2t (two datapath threads), sluice-vxlan-2n (the same, decided flows off the JS thread), ' +
      'sluice-vxlan-lowlat (sluice-vxlan-2n with --busy-poll 300) (default: every system installed here)')
    .option('--tests <list>', 'comma-separated: tcp1, tcp4, udp, ping', 'tcp1,tcp4,udp,ping')
    .option('--baseline <dir>', 'a built Sluice checkout to run as sluice-vxlan-baseline')
    .option('--realtime <priority>', 'run every userspace forwarder SCHED_FIFO at this priority (0: normal)', '0')
    .option('--json', 'print the results as JSON instead of the table', false)
    .option('--plot <file.svg>', 'draw a bar chart of the results')
    .option('--results <file>', 'RESULTS.md to update with the table (default: bench/RESULTS.md of this checkout)')
    .option('--no-write', 'do not update RESULTS.md')
    .action(async (opts: { seconds: string; repeat: string; systems?: string; tests: string; baseline?: string; realtime: string; json: boolean;
      plot?: string; results?: string; write: boolean }) => {
      // Loaded on use: the harness (labs, iperf3, the other tunnels) is not needed by any other command.
      const { DEFAULT_RESULTS, checkOptions, defaultSystems, runBench } = await import('../../bench/sluice-bench.js').catch((err: unknown) => {
        // The container image ships only what the daemon and the CLI need.
        if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
        throw new Error('sluice bench runs from a source checkout (bench/ and its test helpers are not part of this install): ' +
          'git clone the repository, then `./scripts/setup.sh && npm ci && node dist/src/cli.js bench`');
      });
      const checked = checkOptions({ ...opts, systems: opts.systems ?? defaultSystems() });
      const out = await runBench({
        ...checked,
        baseline: opts.baseline,
        realtime: checked.realtime,
        plot: opts.plot,
        results: opts.write ? opts.results ?? DEFAULT_RESULTS : undefined,
        command: `sluice ${process.argv.slice(2).join(' ')}`,
      }, (line) => process.stderr.write(`[bench] ${line}\n`));
      process.stdout.write(`${opts.json ? out.json : out.markdown}\n`);
    });
}
