// Shell completion generated from the real command tree, exercised in bash.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src', 'cli.js');

function complete(words: string[]): string[] {
  const script = execFileSync(process.execPath, [CLI, 'completion', 'bash'], { encoding: 'utf8' });
  const arr = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync('bash', ['-c', `${script}\nCOMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _sluice; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
  return out.trim().split(/\s+/).filter(Boolean);
}

describe('sluice completion bash', () => {
  it('completes top-level commands', () => {
    assert.deepEqual(complete(['sluice', 'tr']), ['trace']);
    assert.ok(complete(['sluice', '']).includes('daemon'));
  });
  it('completes subcommands and their flags', () => {
    assert.deepEqual(complete(['sluice', 'lab', 'd']), ['down']);
    assert.deepEqual(complete(['sluice', 'lab', 'up', '--back']), ['--backend']);
    assert.deepEqual(complete(['sluice', 'flows', '--deny']), ['--deny-only']);
    assert.deepEqual(complete(['sluice', 'daemon', '--flow']), ['--flow-cache-size']);
  });
  it('refuses an unknown shell', () => {
    assert.throws(() => execFileSync(process.execPath, [CLI, 'completion', 'fish'], { stdio: 'pipe' }), /supported shells are bash and zsh/);
  });
});
