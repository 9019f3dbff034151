// Pod namespaces: empty but for lo. The host's daemon creates the pod's TUN device and moves it in.
import type { LabPod } from './state.js';
import { type RecordNetns, addNetns } from './underlay.js';

export async function createPod(pod: LabPod, record: RecordNetns): Promise<void> {
  await addNetns(pod.netns, record);
}
