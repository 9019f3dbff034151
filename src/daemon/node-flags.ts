// V8 flags the daemon runs with. V8 reads them only at start-up, so they belong on the node
// command line: the lab, `sluice bench`, the Dockerfile, the systemd unit and the `sluice`
// shebang put them there; a daemon started without them says so in its log.
//
// --max-semi-space-size=2: V8 grows each of the young generation's semi-spaces up to 16 MiB
// under allocation — a burst of new flows — and keeps them: ~30 MiB of RSS for a heap whose
// live data is ~15 MiB. Capped at 2 MiB (the young generation at 4 MiB), new flows/s through
// the policy pool measured the same (bench/RESULTS.md) and the daemon with 1M cached flows
// ~10 MiB smaller.
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** The flags of DAEMON_NODE_FLAGS this process was not started with, by name (any value given counts). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const name = (arg: string): string => arg.split('=')[0].replaceAll('_', '-');
  const given = new Set([...execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map(name));
  return DAEMON_NODE_FLAGS.filter((f) => !given.has(name(f)));
}
