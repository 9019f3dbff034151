// `sluice apply -f`, `sluice delete -f` and `sluice get policies|endpoints|hosts`: the cluster's
// resources in etcd (see src/store/etcd/keys.ts for the layout).
//
// apply/delete validate every document first (the policy layer: file, document and field of each
// problem) and then write in one etcd transaction, so an invalid manifest means nothing is written.
//
// Exit codes: 0 done; 1 etcd unreachable, or `delete` found something missing; 2 bad usage or
// invalid manifests / store contents (message on stderr). Output goes through commander's
// configured writers so tests (and the main CLI) can capture it.
import { Command, CommanderError } from 'commander';
import type { Etcd3 } from 'etcd3';
import { ManifestError } from '../policy/errors.js';
import { buildResourceSet, readManifestFiles } from '../policy/manifests.js';
import { DEFAULT_ENDPOINT, createClient, listAll } from '../store/etcd/client.js';
import { DEFAULT_PREFIX, DEFAULT_RESOURCE_PREFIX, type EtcdLayout, describeResource, makeLayout } from '../store/etcd/keys.js';
import { type WriteResult, applyResources, deleteResources, planResources } from '../store/etcd/resources.js';
import { buildState } from '../store/etcd/snapshot.js';
import { StoreError } from '../store/errors.js';
import { unreachable } from '../store/etcd/watch-loop.js';

interface StoreOpts {
  etcd: string;
  prefix: string;
  resourcePrefix: string;
}

/** Usage errors exit with 2, like invalid input. */
class ResourceCommand extends Command {
  override createCommand(name?: string): Command {
    return new ResourceCommand(name);
  }

  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    return super.error(message, { exitCode: 2, ...errorOptions });
  }
}

function fail(cmd: Command, err: unknown): never {
  if (err instanceof CommanderError) throw err;
  cmd.showHelpAfterError(false);
  if (err instanceof ManifestError) {
    return cmd.error(`error: invalid manifests (nothing was written):\n  ${err.message.split('\n').join('\n  ')}`, { exitCode: 2, code: 'sluice.resources' });
  }
  if ((err instanceof StoreError && err.code === 'STORE_INVALID') || err instanceof TypeError) {
    return cmd.error(`error: ${err.message}`, { exitCode: 2, code: 'sluice.resources' });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return cmd.error(`error: ${msg}`, { exitCode: 1, code: 'sluice.resources' });
}

const out = (cmd: Command) => cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));

function withStoreOptions(c: Command): Command {
  return c
    .option('--etcd <url>', 'etcd client URL', DEFAULT_ENDPOINT)
    .option('--prefix <prefix>', 'Flannel key prefix (network config and subnet leases)', DEFAULT_PREFIX)
    .option('--resource-prefix <prefix>', 'key prefix of Sluice resources (manifests)', DEFAULT_RESOURCE_PREFIX);
}

async function withClient<T>(o: StoreOpts, fn: (client: Etcd3, layout: EtcdLayout, source: string) => Promise<T>): Promise<T> {
  const layout = makeLayout(o.prefix, o.resourcePrefix);
  const client = createClient({ endpoints: o.etcd });
  const source = `etcd ${o.etcd}`;
  try {
    return await fn(client, layout, source);
  } catch (e) {
    if (e instanceof ManifestError || e instanceof StoreError || e instanceof TypeError) throw e;
    throw unreachable(source, e);
  } finally {
    client.close();
  }
}

/** A plain text table: a header row, columns padded to their widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function report(cmd: Command, results: readonly WriteResult[]): void {
  const w = out(cmd);
  for (const r of results) w(`${describeResource(r.resource.id)} ${r.outcome}\n`);
}

async function applyAction(cmd: Command, o: StoreOpts & { filename: string[] }): Promise<void> {
  const plan = planResources(readManifestFiles(o.filename));
  if (plan.length === 0) {
    out(cmd)('no resources in the given files\n');
    return;
  }
  const results = await withClient(o, (client, layout, source) => applyResources(client, layout, plan, source));
  report(cmd, results);
}

async function deleteAction(cmd: Command, o: StoreOpts & { filename: string[]; ignoreNotFound?: boolean }): Promise<void> {
  const plan = planResources(readManifestFiles(o.filename));
  const results = await withClient(o, (client, layout) => deleteResources(client, layout, plan));
  report(cmd, results);
  const missing = results.filter((r) => r.outcome === 'not found').length;
  if (missing > 0 && o.ignoreNotFound !== true) {
    cmd.showHelpAfterError(false);
    cmd.error(`error: ${missing} of ${results.length} resource(s) not found (the others were deleted)`, { exitCode: 1, code: 'sluice.resources' });
  }
}

const WHAT = ['policies', 'endpoints', 'hosts'] as const;
type What = (typeof WHAT)[number];

async function getAction(cmd: Command, what: What, o: StoreOpts & { json?: boolean }): Promise<void> {
  const w = out(cmd);
  const text = await withClient(o, async (client, layout, source) => {
    const listing = await listAll(client, layout);
    const state = buildState(listing, layout, source);
    const snap = state.snapshot;
    if (what === 'endpoints') {
      if (o.json) return JSON.stringify(snap.endpoints, null, 2) + '\n';
      if (snap.endpoints.length === 0) return 'no endpoints\n';
      return formatTable(['NAMESPACE', 'NAME', 'HOST', 'IP', 'IPV6', 'LABELS'], snap.endpoints.map((e) => [
        e.namespace, e.name, e.host, e.ip, e.ipv6 ?? '-', Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
      ]));
    }
    if (what === 'policies') {
      const policies = buildResourceSet(snap.manifests.map((value, i) => ({ source: 'etcd', doc: i + 1, value }))).policies;
      const rows = policies.map((p) => ({
        kind: p.kind, namespace: p.namespace ?? null, name: p.name, order: p.order ?? null, selector: p.selector.toString(),
        types: [p.types.ingress ? 'Ingress' : '', p.types.egress ? 'Egress' : ''].filter((t) => t !== ''),
        ingressRules: p.ingress.length, egressRules: p.egress.length,
      }));
      if (o.json) return JSON.stringify(rows, null, 2) + '\n';
      if (rows.length === 0) return 'no policies\n';
      return formatTable(['KIND', 'NAMESPACE', 'NAME', 'ORDER', 'SELECTOR', 'TYPES', 'RULES (IN/OUT)'], rows.map((p) => [
        p.kind, p.namespace ?? '-', p.name, p.order === null ? '-' : String(p.order), p.selector, p.types.join(',') || '-', `${p.ingressRules}/${p.egressRules}`,
      ]));
    }
    // Hosts, with what is left of each lease.
    const rows = await Promise.all(state.hosts.map(async (h) => {
      const kv = listing.subnets[h.index];
      const leaseId = kv.lease;
      let ttl: number | null = null;
      if (leaseId !== '0') {
        const r = await client.leaseClient.leaseTimeToLive({ ID: leaseId });
        ttl = Number(r.TTL);
      }
      return { ...h.record, key: kv.key, lease: leaseId === '0' ? null : { id: leaseId, ttlSeconds: ttl } };
    }));
    if (o.json) return JSON.stringify(rows, null, 2) + '\n';
    if (rows.length === 0) return 'no hosts\n';
    return formatTable(['NAME', 'PUBLIC-IP', 'SUBNET', 'IPV6-SUBNET', 'VTEP-MAC', 'LEASE'], rows.map((h) => [
      h.name, h.port === undefined ? h.publicIP : `${h.publicIP}:${h.port}`, h.subnet, h.ipv6Subnet ?? '-', h.vtepMAC,
      h.lease === null ? 'reservation' : `expires in ${formatDuration(h.lease.ttlSeconds ?? 0)}`,
    ]));
  });
  w(text);
}

function formatDuration(s: number): string {
  if (s < 0) return 'expired';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function registerResourceCommands(program: Command): void {
  const apply = withStoreOptions(new ResourceCommand('apply'))
    .description('validate manifests (Namespace, Pod, Kubernetes and Calico policies) and write them to etcd in one transaction')
    .requiredOption('-f, --filename <paths...>', 'manifest files or directories (YAML, multi-document, or JSON)')
    .action(async (opts, cmd: Command) => {
      try { await applyAction(cmd, opts); } catch (e) { fail(cmd, e); }
    });
  const del = withStoreOptions(new ResourceCommand('delete'))
    .description('delete the resources named in manifests from etcd, in one transaction')
    .requiredOption('-f, --filename <paths...>', 'manifest files or directories (YAML, multi-document, or JSON)')
    .option('--ignore-not-found', 'do not fail when a resource is not there')
    .action(async (opts, cmd: Command) => {
      try { await deleteAction(cmd, opts); } catch (e) { fail(cmd, e); }
    });
  const get = withStoreOptions(new ResourceCommand('get'))
    .description('list policies, endpoints or hosts from etcd')
    .argument('<what>', `one of: ${WHAT.join(', ')}`)
    .option('--json', 'print JSON instead of a table')
    .action(async (what: string, opts, cmd: Command) => {
      if (!(WHAT as readonly string[]).includes(what)) {
        cmd.error(`error: cannot get ${JSON.stringify(what)}; expected one of: ${WHAT.join(', ')}`, { exitCode: 2 });
      }
      try { await getAction(cmd, what as What, opts); } catch (e) { fail(cmd, e); }
    });
  for (const c of [apply, del, get]) {
    c.copyInheritedSettings(program);
    program.addCommand(c);
  }
}
