// native.mallocTrim: memory the C heap freed in the middle of an arena (holes glibc keeps
// resident) goes back to the kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { native } from '../../src/native/binding.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const rssMiB = (): number => process.memoryUsage.rss() / 1048576;

test('mallocTrim returns the free holes of the C heap to the kernel', async () => {
  // 64 KiB array buffers come from malloc's heap (below its mmap threshold). Keeping every other
  // one leaves 1,000 free 64 KiB holes between live blocks: free() cannot shrink the heap past
  // them, malloc_trim can (MADV_DONTNEED on the free pages).
  const blocks: (ArrayBuffer | undefined)[] = [];
  for (let i = 0; i < 2000; i++) new Uint8Array((blocks[i] = new ArrayBuffer(64 * 1024))).fill(1);
  for (let i = 0; i < blocks.length; i += 2) blocks[i] = undefined;
  gc();
  gc();
  const before = rssMiB();
  assert.equal(await native.mallocTrim(), true, 'malloc_trim released memory');
  const after = rssMiB();
  assert.ok(before - after > 30, `RSS fell by ${(before - after).toFixed(1)} MiB (${before.toFixed(1)} → ${after.toFixed(1)}), expected ~62`);
  assert.equal(blocks.filter((b) => b !== undefined).length, 1000);
});
