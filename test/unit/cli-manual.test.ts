// Every manual section belongs to a real command and shows in its --help.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MANUAL } from '../../src/api/manual.js';

const CLI = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src', 'cli.js');

describe('the manual', () => {
  for (const [path, text] of Object.entries(MANUAL)) {
    it(`sluice ${path || '(top level)'} --help shows its section`, () => {
      const help = execFileSync(process.execPath, [CLI, ...path.split(' ').filter(Boolean), '--help'], { encoding: 'utf8' });
      assert.ok(help.includes(text.trim().split('\n')[0]), help);
    });
  }
});
