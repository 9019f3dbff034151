// `sluice policy check` and `sluice policy matrix`: offline policy analysis over
// manifest files, using the same compiler and evaluator as the daemon.
//
// Exit codes: 0 = answered (whatever the verdict), 2 = bad usage or bad manifests
// (message on stderr naming the problem). Output goes through commander's configured
// writers so tests (and the main CLI) can capture it.

import { Command } from 'commander';
import { compile } from '../policy/compiler.js';
import { ManifestError } from '../policy/errors.js';
import { evaluate, type DirectionVerdict, type FlowQuery, type Verdict } from '../policy/evaluator.js';
import { canonicalIP, formatWords, parseCidr } from '../policy/ip.js';
import { loadManifests } from '../policy/manifests.js';
import { formatMatrix, parseProbes, reachability } from '../policy/matrix.js';
import { podIPs, withLabIPs, type ResourceSet } from '../policy/model.js';
import { hasPorts, parseProtocol, protocolName } from '../policy/protocols.js';
import type { PolicySnapshot } from '../policy/snapshot.js';

/** Commands whose usage errors exit with 2, like their runtime errors. */
class PolicyCommand extends Command {
  override createCommand(name?: string): Command {
    return new PolicyCommand(name);
  }

  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    return super.error(message, { ...errorOptions, exitCode: 2 });
  }
}

/** Runtime failure: message to stderr, exit code 2, no usage help. */
function fail(cmd: Command, err: unknown): never {
  const msg = err instanceof ManifestError
    ? `invalid manifests (nothing was loaded):\n  ${err.message.split('\n').join('\n  ')}`
    : err instanceof Error ? err.message : String(err);
  cmd.showHelpAfterError(false);
  return cmd.error(`error: ${msg}`, { exitCode: 2, code: 'sluice.policy' });
}

const OFFLINE_RANGE = '198.18.0.0/15'; // RFC 2544 benchmarking range: not used by real pods

/**
 * Pods without status IPs still need an address to be analysed: give them unused
 * addresses from 198.18.0.0/15 (the lab assigns real ones when it runs them).
 */
function withOfflineIPs(set: ResourceSet, note: (s: string) => void): ResourceSet {
  const used = new Set(set.pods.flatMap((p) => [...podIPs(p)]));
  const base = parseCidr(OFFLINE_RANGE);
  if (typeof base === 'string') throw new Error(base);
  let next = base.words[0] + 1;
  const assigned: string[] = [];
  const out = withLabIPs(set, (p) => {
    if (p.hostNetwork || podIPs(p).length > 0) return undefined;
    let ip: string;
    do ip = formatWords(4, [next++]); while (used.has(ip));
    assigned.push(`${p.namespace}/${p.name}=${ip}`);
    return ip;
  });
  if (assigned.length > 0) {
    note(`note: ${assigned.length} pod(s) have no status.podIP; using addresses from ${OFFLINE_RANGE} for this analysis: ${assigned.join(' ')}\n`);
  }
  return out;
}

function load(cmd: Command, paths: string[]): { set: ResourceSet; snapshot: PolicySnapshot } {
  const err = cmd.configureOutput().writeErr ?? ((s: string) => process.stderr.write(s));
  const set = withOfflineIPs(loadManifests(paths), err);
  return { set, snapshot: compile(set) };
}

interface EndpointRef {
  label: string;
  ip: string;
}

function resolveEndpoint(set: ResourceSet, text: string, option: string): EndpointRef {
  const ip = canonicalIP(text);
  if (ip !== undefined) {
    const pod = set.pods.find((p) => !p.hostNetwork && podIPs(p).includes(ip));
    return { label: pod ? `${pod.namespace}/${pod.name}` : ip, ip };
  }
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(text);
  if (!m) throw new Error(`${option}: expected NS/POD or an IP address, got ${JSON.stringify(text)}`);
  const pod = set.pods.find((p) => p.namespace === m[1] && p.name === m[2]);
  if (!pod) throw new Error(`${option}: no pod ${text} in the manifests`);
  if (pod.hostNetwork) throw new Error(`${option}: pod ${text} uses the host network and is not a policy endpoint`);
  return { label: text, ip: podIPs(pod)[0] };
}

function intOption(value: string | undefined, option: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`${option}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function policiesSelecting(s: PolicySnapshot, endpoint: string, direction: 'ingress' | 'egress'): string[] {
  const e = s.endpoints.find((x) => x.key === endpoint);
  return e ? [...e[direction]].map((i) => s.policies[i].id) : [];
}

function explain(s: PolicySnapshot, v: DirectionVerdict, direction: 'ingress' | 'egress', addr: string): string {
  const head = `${direction.padEnd(7)} ${v.endpoint ? `at ${v.endpoint}` : `at ${addr}`}:`;
  switch (v.reason) {
    case 'not-an-endpoint':
      return `${head} not checked (${addr} is not a known pod)`;
    case 'loopback':
      return `${head} allowed (traffic to the pod's own address is not subject to policy)`;
    case 'no-policy':
      return `${head} allowed (no policy selects ${v.endpoint} for ${direction})`;
    case 'rule': {
      const pass = v.action === 'Pass' ? '; Pass skips the rest of the tier and the namespace profile allows' : '';
      return `${head} ${v.allowed ? 'allowed' : 'denied'} by ${v.policy} ${direction} rule ${v.rule} (${v.action}${pass})`;
    }
    case 'default-deny':
      return `${head} denied (default deny: selected by ${policiesSelecting(s, v.endpoint!, direction).join(', ')}; no rule allowed the flow)`;
  }
}

function checkAction(cmd: Command, opts: Record<string, string | string[] | boolean | undefined>): void {
  const { set, snapshot } = load(cmd, opts.filename as string[]);
  const from = resolveEndpoint(set, opts.from as string, '--from');
  const to = resolveEndpoint(set, opts.to as string, '--to');
  const protocol = parseProtocol(opts.protocol as string);
  if (protocol === undefined) {
    throw new Error(`--protocol: expected TCP, UDP, SCTP, ICMP, ICMPv6, UDPLite or 1-255, got ${JSON.stringify(opts.protocol)}`);
  }
  const port = intOption(opts.port as string | undefined, '--port', 0, 65535);
  if (hasPorts(protocol) && port === undefined) throw new Error(`--port is required for ${protocolName(protocol)}`);
  const flow: FlowQuery = {
    src: from.ip,
    dst: to.ip,
    protocol,
    srcPort: intOption(opts.srcPort as string, '--src-port', 0, 65535) ?? 49152,
    dstPort: port ?? 0,
  };
  const icmpType = intOption(opts.icmpType as string | undefined, '--icmp-type', 0, 255);
  const icmpCode = intOption(opts.icmpCode as string | undefined, '--icmp-code', 0, 255);
  if (icmpType !== undefined) flow.icmpType = icmpType;
  if (icmpCode !== undefined) flow.icmpCode = icmpCode;
  const v: Verdict = evaluate(snapshot, flow);
  const out = cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
  const what = hasPorts(protocol) ? `${protocolName(protocol)}/${port}` : protocolName(protocol);
  if (opts.json) {
    const { generation: _g, ...rest } = v;
    out(JSON.stringify({
      from: from.label, to: to.label, fromIP: from.ip, toIP: to.ip,
      protocol: protocolName(protocol), port: hasPorts(protocol) ? port : undefined, ...rest,
    }, null, 2) + '\n');
    return;
  }
  const lines = [
    `${from.label} (${from.ip}) -> ${to.label} (${to.ip}) ${what}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`,
    `  ${explain(snapshot, v.egress, 'egress', from.ip)}`,
    `  ${explain(snapshot, v.ingress, 'ingress', to.ip)}`,
    ...v.logs.map((l) => `  log: ${l.policy} ${l.direction} rule ${l.rule} at ${l.endpoint}`),
  ];
  out(lines.join('\n') + '\n');
}

function matrixAction(cmd: Command, opts: Record<string, string | string[] | boolean | undefined>): void {
  let probes;
  try {
    probes = parseProbes(opts.ports as string);
  } catch (e) {
    throw new Error(`--ports: ${(e as Error).message}`);
  }
  const { snapshot } = load(cmd, opts.filename as string[]);
  const cells = reachability(snapshot, probes);
  const out = cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
  if (opts.json) out(JSON.stringify(cells, null, 2) + '\n');
  else if (snapshot.endpoints.length === 0) out('no pods in the manifests\n');
  else out(formatMatrix(snapshot, cells));
}

export function registerPolicyCommands(program: Command): void {
  const policy = new PolicyCommand('policy')
    .description('offline policy analysis of Kubernetes and Calico manifests');
  policy.copyInheritedSettings(program);
  program.addCommand(policy);

  policy.command('check')
    .description('evaluate one flow: verdict plus the deciding policy and rule, per direction')
    .requiredOption('-f, --filename <paths...>', 'manifest files or directories (YAML, multi-document, or JSON)')
    .requiredOption('--from <endpoint>', 'source: NS/POD or an IP address')
    .requiredOption('--to <endpoint>', 'destination: NS/POD or an IP address')
    .option('--protocol <protocol>', 'TCP, UDP, SCTP, ICMP, ICMPv6, UDPLite or a number', 'TCP')
    .option('--port <port>', 'destination port (required for TCP, UDP, SCTP)')
    .option('--src-port <port>', 'source port', '49152')
    .option('--icmp-type <type>', 'ICMP type')
    .option('--icmp-code <code>', 'ICMP code')
    .option('--json', 'print the verdict as JSON')
    .action((opts, cmd: Command) => {
      try { checkAction(cmd, opts); } catch (e) { fail(cmd, e); }
    });

  policy.command('matrix')
    .description("reachability of every ordered pod pair per port ('.' allowed, 'X' blocked)")
    .requiredOption('-f, --filename <paths...>', 'manifest files or directories (YAML, multi-document, or JSON)')
    .option('--ports <list>', 'comma-separated PROTOCOL/PORT probes', 'TCP/80')
    .option('--json', 'print an array of {from, to, protocol, port, allowed}')
    .action((opts, cmd: Command) => {
      try { matrixAction(cmd, opts); } catch (e) { fail(cmd, e); }
    });
}
