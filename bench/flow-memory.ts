// Memory of the flow cache when full: RSS and heap of this process with N flows
// cached through the real gate (PolicyEnforcer.decide, inline mode, no policy),
// as a daemon's cache would hold them.
//
//   node --expose-gc dist/bench/flow-memory.js [--flows 1000000]
import { parseArgs } from 'node:util';
import { PolicyEnforcer } from '../src/flow/policy-enforcer.js';
import { FlowKey } from '../src/packet/flow-key.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';

const { values } = parseArgs({ options: { flows: { type: 'string', default: '1000000' } } });
const N = Number(values.flows);
const gc = (globalThis as { gc?: () => void }).gc;

const mib = (n: number) => (n / 1048576).toFixed(1);
function usage(): { rss: number; heap: number } {
  gc?.(); gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

const enforcer = new PolicyEnforcer({ mode: 'inline', timers: false, cache: { max: N } });
const parser = new FlowKeyParser();
const key = new FlowKey();
const before = usage();
for (let i = 0; i < N; i++) {
  key.setV4(6, 0x0af40102, (0x0af40200 | (i >>> 16)) | 0, 1024 + (i & 0xffff) % 60000, 80 + (i >>> 16));
  enforcer.decide(key, parser, 100, undefined, undefined);
}
const after = usage();
const s = enforcer.stats();
process.stdout.write([
  `| flows cached | RSS before | RSS after | heap after | bytes per flow (RSS) |`,
  `|---|---|---|---|---|`,
  `| ${s.cache.flows} | ${mib(before.rss)} MiB | ${mib(after.rss)} MiB | ${mib(after.heap)} MiB | ${((after.rss - before.rss) / s.cache.flows).toFixed(0)} |`,
  '',
].join('\n'));
await enforcer.close();
