// The underlay: netns `<lab>-ul` with bridge br0, and per host a netns `<lab>-h<i>` joined to the
// bridge by a veth pair (eth0 in the host, h<i> on the bridge). The veth is created inside the
// underlay netns with its peer sent straight to the host netns, so nothing ever appears in the
// root namespace.
import { ip } from './run.js';
import type { LabHost, LabLink } from './state.js';

/** Records a namespace before creating it (see state.ts). */
export type RecordNetns = (name: string) => void;
/** Records a link before creating it. */
export type RecordLink = (link: LabLink) => void;

export async function addNetns(name: string, record: RecordNetns): Promise<void> {
  record(name);
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
}

export async function createUnderlay(ul: string, record: RecordNetns, recordLink: RecordLink): Promise<void> {
  await addNetns(ul, record);
  recordLink({ netns: ul, name: 'br0', kind: 'bridge' });
  await ip('-n', ul, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', ul, 'link', 'set', 'br0', 'up');
}

export async function createHost(ul: string, host: LabHost, prefix: number, record: RecordNetns, recordLink: RecordLink): Promise<void> {
  await addNetns(host.netns, record);
  recordLink({ netns: ul, name: host.name, kind: 'veth', peer: `${host.netns}/eth0` });
  await ip('-n', ul, 'link', 'add', host.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns);
  await ip('-n', ul, 'link', 'set', host.name, 'master', 'br0', 'up');
  await ip('-n', host.netns, 'addr', 'add', `${host.underlayIP}/${prefix}`, 'dev', 'eth0');
  await ip('-n', host.netns, 'link', 'set', 'eth0', 'up');
}
