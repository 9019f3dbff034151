// One subnet lease acquisition, Flannel's way (pkg/subnet/etcd/local_manager.go tryAcquireLease):
//
//   1 list the config and every lease (one read, one revision)
//   2 a lease with our PublicIP that fits the config → take it back (a restarted host keeps its
//     subnet), re-binding it to a fresh etcd lease; one that no longer fits → delete it
//   3 else collect up to 100 free subnets between SubnetMin and SubnetMax, pick one at random
//   4 create it with Txn If(Version(key) == 0) Then Put(key, value, lease)
//   5 lost the race (the key exists) → back to 1, at most 10 times
//
// Unlike Flannel v3, a lost race is retried (its v3 registry returns errSubnetAlreadyexists, which
// the retry check does not recognise, so a host that loses a race fails to start). And one more
// check Flannel lacks: after creating the key we re-list, and if an older lease overlaps ours under
// a different key (a dual-stack key `a&b` and a plain `a` never collide on Version), the younger
// lease — ours — is withdrawn and we try again. Both hosts see the same revisions, so exactly one
// withdraws.
import type { Etcd3, IRequestOp } from 'etcd3';
import type { Logger } from 'pino';
import { type Cidr, parseCidr } from '../cidr.js';
import { StoreError } from '../errors.js';
import type { HostRecord } from '../store.js';
import { defaultVtepMAC } from '../validate.js';
import type { KV } from './client.js';
import { type EtcdNetwork, parseEtcdConfig } from './config.js';
import { type EtcdLayout, configKey, parseSubnetKey, prefixEnd, subnetKey, subnetsPrefix } from './keys.js';
import { leaseValueJSON } from './lease-record.js';
import { freeSubnets, overlaps, toBig } from './subnet-math.js';

/** Flannel: subnetTTL = 24 h. */
export const DEFAULT_LEASE_TTL_SECONDS = 24 * 60 * 60;
/** Flannel: raceRetries. */
export const RACE_RETRIES = 10;
/** Flannel: candidates collected before picking one at random. */
const MAX_CANDIDATES = 100;

export interface AcquireOptions {
  /** Underlay IPv4 address: the host's identity, as in Flannel. */
  publicIP: string;
  /** Host name (stored as SluiceHost); default: the public IP. */
  hostName?: string;
  /** VTEP MAC; default derived from the subnet (02:00:<subnet bytes>), like the cluster file. */
  vtepMAC?: string;
  /** Underlay UDP port when it differs from the backend's default. */
  port?: number;
  /** etcd lease TTL (default 24 h, like Flannel). */
  ttlSeconds?: number;
  /**
   * The subnet held before (Flannel reads it from subnet.env): tried first when it is free, so a
   * host whose lease expired, or whose key was lost with etcd's data, keeps its subnet if it can.
   */
  previousSubnet?: string;
  previousIPv6Subnet?: string;
  /** Picks one of `n` free candidates (default: at random, like Flannel). Tests force races with () => 0. */
  choose?: (n: number) => number;
}

export interface SubnetLease {
  key: string;
  subnet: string;
  ipv6Subnet?: string;
  /** This host as every host (ourselves included) sees it in the store's snapshots. */
  host: HostRecord;
  /** etcd lease ID; "0" for a reservation (a key with no lease, which never expires). */
  leaseId: string;
  /** TTL etcd granted (it may round a very short one up); 0 for a reservation. */
  ttlSeconds: number;
  /** True when we got back the subnet we held before (same PublicIP). */
  reused: boolean;
  /** Transactions tried (1 when nobody raced us). */
  attempts: number;
  /** Revision at which the key was written. */
  revision: string;
}

interface Existing {
  kv: KV;
  subnet: Cidr;
  ipv6Subnet?: Cidr;
  publicIP: string | undefined;
}

function readLeases(kvs: readonly KV[], layout: EtcdLayout): Existing[] {
  const out: Existing[] = [];
  for (const kv of kvs) {
    const sk = parseSubnetKey(kv.key.slice(subnetsPrefix(layout).length));
    if (typeof sk === 'string') continue; // not a lease; the store reports it
    let publicIP: string | undefined;
    try {
      const v = JSON.parse(kv.value) as { PublicIP?: unknown };
      if (typeof v.PublicIP === 'string') publicIP = v.PublicIP;
    } catch { /* unreadable value: still occupies its subnet */ }
    out.push({ kv, subnet: sk.subnet, ipv6Subnet: sk.ipv6Subnet, publicIP });
  }
  return out;
}

async function listLeases(client: Etcd3, layout: EtcdLayout, source: string): Promise<{ net: EtcdNetwork; leases: Existing[]; revision: string }> {
  const p = subnetsPrefix(layout);
  const res = await client.kv.txn({
    success: [{ request_range: { key: Buffer.from(configKey(layout)) } }, { request_range: { key: Buffer.from(p), range_end: prefixEnd(p) } }],
  });
  const [cfg, subs] = res.responses.map((r) => r.response_range.kvs);
  if (cfg.length === 0) {
    throw new StoreError('STORE_INVALID', source, [{ path: '', message: `no network config at ${configKey(layout)}; cannot lease a subnet` }]);
  }
  const issues: { path: string; message: string }[] = [];
  const net = parseEtcdConfig(cfg[0].value.toString(), issues);
  if (net === null) throw new StoreError('STORE_INVALID', source, issues.map((i) => ({ ...i, message: `${i.message} (key ${configKey(layout)})` })));
  const kvs: KV[] = subs.map((k) => ({
    key: k.key.toString(), value: k.value.toString(), lease: String(k.lease ?? '0'),
    createRevision: String(k.create_revision), modRevision: String(k.mod_revision),
  }));
  return { net, leases: readLeases(kvs, layout), revision: String(res.header.revision) };
}

/** Does a lease fit the config as it is now (Flannel's isSubnetConfigCompat)? */
function fits(e: Existing, net: EtcdNetwork): boolean {
  const inRange = (c: Cidr, min: Cidr, max: Cidr, len: number) =>
    c.prefix === len && toBig(c.bytes) >= toBig(min.bytes) && toBig(c.bytes) <= toBig(max.bytes);
  if (!inRange(e.subnet, net.subnetMin, net.subnetMax, net.config.subnetLen)) return false;
  if (net.ipv6SubnetMin === undefined) return e.ipv6Subnet === undefined;
  return e.ipv6Subnet !== undefined && inRange(e.ipv6Subnet, net.ipv6SubnetMin, net.ipv6SubnetMax!, net.config.ipv6SubnetLen!);
}


function hostRecord(o: AcquireOptions, subnet: Cidr, ipv6Subnet: Cidr | undefined): HostRecord {
  const h: HostRecord = { name: o.hostName ?? o.publicIP, publicIP: o.publicIP, subnet: subnet.text, vtepMAC: (o.vtepMAC ?? defaultVtepMAC(subnet)).toLowerCase() };
  if (ipv6Subnet !== undefined) h.ipv6Subnet = ipv6Subnet.text;
  if (o.port !== undefined) h.port = o.port;
  return h;
}

const put = (key: string, value: string, lease: string): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } });

/**
 * Acquires (or takes back) this host's subnet lease; throws StoreError or the etcd error. The etcd
 * lease is not kept alive here: that is the caller's job (SubnetLeaseManager), else it expires.
 */
export async function acquireSubnet(client: Etcd3, layout: EtcdLayout, o: AcquireOptions, source: string, log?: Logger): Promise<SubnetLease> {
  const ttl = o.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1) throw new TypeError(`ttlSeconds: expected a whole number of seconds >= 1, got ${ttl}`);
  const choose = o.choose ?? ((n: number) => Math.floor(Math.random() * n));
  const pick = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.max(0, choose(xs.length)))];
  // An etcd lease granted but not (yet) handed to the caller: revoked if anything goes wrong.
  let pending: string | undefined;
  let granted = 0;
  const grant = async (): Promise<string> => {
    const r = await client.leaseClient.leaseGrant({ TTL: ttl });
    pending = String(r.ID);
    granted = Number(r.TTL);
    return pending;
  };
  const withdraw = async (): Promise<void> => {
    const id = pending;
    pending = undefined;
    if (id !== undefined) await revokeId(client, id).catch(() => undefined);
  };
  try {
    for (let attempt = 1; attempt <= RACE_RETRIES; attempt++) {
      const { net, leases } = await listLeases(client, layout, source);
      const value = (subnet: Cidr, v6: Cidr | undefined) => leaseValueJSON({ ...hostRecord(o, subnet, v6), name: o.hostName }, net.config.backend);

      // 2: our own lease from before.
      const mine = leases.filter((e) => e.publicIP === o.publicIP);
      const keep = mine.find((e) => fits(e, net));
      for (const e of mine) {
        if (e === keep) continue;
        log?.info({ key: e.kv.key }, 'deleting our old subnet lease: it no longer fits the network config');
        await client.kv.txn({
          compare: [{ key: Buffer.from(e.kv.key), target: 'Mod', result: 'Equal', mod_revision: e.kv.modRevision }],
          success: [{ request_delete_range: { key: Buffer.from(e.kv.key) } }],
        });
      }
      if (keep !== undefined) {
        const reservation = keep.kv.lease === '0';
        const id = reservation ? '0' : await grant();
        const res = await client.kv.txn({
          compare: [{ key: Buffer.from(keep.kv.key), target: 'Mod', result: 'Equal', mod_revision: keep.kv.modRevision }],
          success: [put(keep.kv.key, value(keep.subnet, keep.ipv6Subnet), id)],
        });
        if (!res.succeeded) {
          await withdraw();
          continue;
        }
        // The previous run's etcd lease now holds no key; let it go rather than wait for its TTL.
        if (!reservation && keep.kv.lease !== '0' && keep.kv.lease !== id) await revokeId(client, keep.kv.lease).catch(() => undefined);
        pending = undefined;
        return made(keep.kv.key, keep.subnet, keep.ipv6Subnet, id, reservation ? 0 : granted, true, attempt, String(res.header.revision));
      }

      // 3: a free subnet, at random among the first 100.
      const used4 = leases.map((e) => e.subnet);
      const cands = freeSubnets(4, toBig(net.subnetMin.bytes), toBig(net.subnetMax.bytes), net.config.subnetLen, used4, MAX_CANDIDATES);
      if (cands.length === 0) {
        throw new StoreError('STORE_INVALID', source, [{ path: 'network', message: `out of subnets: every /${net.config.subnetLen} from ${net.subnetMin.text} to ${net.subnetMax.text} is leased` }]);
      }
      const subnet = (o.previousSubnet === undefined ? undefined : freeAt(o.previousSubnet, 4, net, used4)) ?? pick(cands);
      let v6: Cidr | undefined;
      if (net.ipv6SubnetMin !== undefined) {
        const used6 = leases.flatMap((e) => (e.ipv6Subnet === undefined ? [] : [e.ipv6Subnet]));
        const c6 = freeSubnets(6, toBig(net.ipv6SubnetMin.bytes), toBig(net.ipv6SubnetMax!.bytes), net.config.ipv6SubnetLen!, used6, MAX_CANDIDATES);
        if (c6.length === 0) {
          throw new StoreError('STORE_INVALID', source, [{ path: 'network', message: `out of IPv6 subnets: every /${net.config.ipv6SubnetLen} from ${net.ipv6SubnetMin.text} to ${net.ipv6SubnetMax!.text} is leased` }]);
        }
        v6 = (o.previousIPv6Subnet === undefined ? undefined : freeAt(o.previousIPv6Subnet, 6, net, used6)) ?? pick(c6);
      }

      // 4: create it, if nobody has.
      const key = subnetKey(layout, subnet.text, v6?.text);
      const id = await grant();
      const res = await client.kv.txn({
        compare: [{ key: Buffer.from(key), target: 'Version', result: 'Equal', version: 0 }],
        success: [put(key, value(subnet, v6), id)],
      });
      if (!res.succeeded) {
        log?.debug({ key, attempt }, 'another host took the subnet first; trying again');
        await withdraw();
        continue;
      }
      const rev = String(res.header.revision);
      const after = await listLeases(client, layout, source);
      const older = after.leases.find((e) => e.kv.key !== key && BigInt(e.kv.createRevision) < BigInt(rev)
        && (overlaps(e.subnet, subnet) || (v6 !== undefined && e.ipv6Subnet !== undefined && overlaps(e.ipv6Subnet, v6))));
      if (older !== undefined) {
        log?.debug({ key, older: older.kv.key, attempt }, 'an older lease overlaps ours; withdrawing it and trying again');
        await withdraw(); // deletes our key with it
        continue;
      }
      pending = undefined;
      return made(key, subnet, v6, id, granted, false, attempt, rev);
    }
  } finally {
    await withdraw();
  }
  throw new StoreError('STORE_INVALID', source, [{ path: '', message: `could not lease a subnet after ${RACE_RETRIES} attempts: other hosts kept taking the chosen subnets` }]);

  function made(key: string, subnet: Cidr, v6: Cidr | undefined, leaseId: string, ttlSeconds: number, reused: boolean, attempts: number, revision: string): SubnetLease {
    const l: SubnetLease = { key, subnet: subnet.text, host: hostRecord(o, subnet, v6), leaseId, ttlSeconds, reused, attempts, revision };
    if (v6 !== undefined) l.ipv6Subnet = v6.text;
    return l;
  }
}

/** `text` as a subnet when it fits the config and overlaps nothing in `used`. */
function freeAt(text: string, family: 4 | 6, net: EtcdNetwork, used: readonly Cidr[]): Cidr | undefined {
  const c = parseCidr(text, family);
  if (typeof c === 'string') return undefined;
  const [min, max, len] = family === 4 ? [net.subnetMin, net.subnetMax, net.config.subnetLen] : [net.ipv6SubnetMin, net.ipv6SubnetMax, net.config.ipv6SubnetLen];
  if (min === undefined || max === undefined || c.prefix !== len) return undefined;
  if (toBig(c.bytes) < toBig(min.bytes) || toBig(c.bytes) > toBig(max.bytes)) return undefined;
  return used.some((u) => overlaps(u, c)) ? undefined : c;
}

async function revokeId(client: Etcd3, id: string): Promise<void> {
  await client.leaseClient.leaseRevoke({ ID: id });
}
