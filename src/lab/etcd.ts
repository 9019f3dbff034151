// The etcd of an etcd lab (`lab up --store etcd` without --etcd): one member, started detached inside
// the underlay namespace with an address on br0, so the hosts reach it across the underlay as a
// cluster's hosts reach theirs:
//
//   <lab>-ul    br0 10.99.0.254/24 ── etcd http://10.99.0.254:2379 (peers :2380)
//                                      └─ and unix://<state dir>/etcd:2379, reachable from any
//                                         namespace: the lab itself and `sluice apply` use it
//   <lab>-h<i>  eth0 10.99.0.<i>   ── daemon --store etcd --etcd http://10.99.0.254:2379
//
// Its data dir and log live in the lab's state dir. `lab down` stops it by the PID recorded in
// state.json, with the same checks as the daemons (start time and command line), and `lab restart
// etcd` starts it again on the same data (a store outage, on purpose).
import { join } from 'node:path';
import { EtcdServer, etcdBinary, etcdSocketPath } from '../store/etcd-server.js';
import { LabError } from './errors.js';
import { isSameProcess, procStartTime, terminate } from './procs.js';
import { ip } from './run.js';
import type { LabEtcd, LabEtcdProcess, LabState } from './state.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** What etcd's command line must contain to be this lab's. */
const needles = (p: LabEtcdProcess): string[] => [p.binary, p.dataDir];

export function etcdRunning(p: LabEtcdProcess): boolean {
  return isSameProcess(p.pid, p.startTime, needles(p));
}

/**
 * Puts `address` on the underlay bridge and starts etcd there. `record` is called with the process
 * as soon as it exists (before it is healthy), so a crash while waiting still leaves it recorded.
 */
export async function startLabEtcd(state: LabState, underlayNetns: string, address: string, prefix: number,
  record: (e: LabEtcd) => void): Promise<LabEtcd> {
  await ip('-n', underlayNetns, 'addr', 'add', `${address}/${prefix}`, 'dev', 'br0');
  const proc: LabEtcdProcess = {
    pid: -1, startTime: -1, binary: etcdBinary(), dataDir: join(state.stateDir, 'etcd'), address,
    clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT, socketDir: state.stateDir, log: join(state.stateDir, 'etcd.log'),
  };
  return spawnEtcd(state.name, underlayNetns, proc, record);
}

/** Starts a lab's etcd again on its data dir (stopping it first if it runs); returns the new record. */
export async function restartLabEtcd(state: LabState, record: (e: LabEtcd) => void, graceMs = 5000): Promise<LabEtcd> {
  const e = state.etcd;
  if (e?.process === undefined || e.netns === undefined) {
    throw new LabError(`lab ${state.name} did not start its etcd (${e === undefined ? 'it uses the file store' : `it uses ${e.url}`}); nothing to restart`);
  }
  await stopLabEtcd(e.process, graceMs);
  return spawnEtcd(state.name, e.netns, { ...e.process }, record);
}

/** Stops the lab's etcd if that PID still is it; says how it ended. */
export async function stopLabEtcd(p: LabEtcdProcess, graceMs: number): Promise<string> {
  if (!etcdRunning(p)) return 'not running';
  return terminate(p.pid, graceMs);
}

async function spawnEtcd(lab: string, netns: string, proc: LabEtcdProcess, record: (e: LabEtcd) => void): Promise<LabEtcd> {
  const entry: LabEtcd = {
    url: `http://${proc.address}:${proc.clientPort}`, localUrl: `unix://${etcdSocketPath(proc.socketDir, proc.clientPort)}`, netns, process: proc,
  };
  try {
    await EtcdServer.start({
      dataDir: proc.dataDir, clientPort: proc.clientPort, peerPort: proc.peerPort, host: proc.address, name: lab,
      binary: proc.binary, logPath: proc.log, detached: true, netns, socketDir: proc.socketDir,
      onSpawn: (pid) => {
        proc.pid = pid;
        proc.startTime = procStartTime(pid) ?? -1;
        record(entry);
      },
    });
  } catch (e) {
    throw new LabError(`could not start etcd for lab ${lab}: ${(e as Error).message}`, 1, { cause: e });
  }
  return entry;
}
