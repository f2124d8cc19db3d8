/**
 * `wardend` and the environment it shares with the tools around it: the CLI's variables
 * (WARDEN_ENDPOINTS, WARDEN_OUTPUT, WARDEN_TIMEOUT), those `warden lock` gives its command and
 * `npm start`'s base port do not stop a member from starting; a misspelt variable of its own
 * still does, naming it.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { NOT_WARDEND_ENV } from '../../shared/env.js';
import { freePort } from '../integration/cluster.js';

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'warden-env-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Start wardend with `env` added; resolves with its exit code once it exits, or with 'started' when it logs that (then stops it). */
async function startWith(env: Record<string, string>, dir: string): Promise<{ outcome: 'started' | number; output: string }> {
  const args = ['--import', 'tsx', MAIN, '--data-dir', join(root, dir), '--listen-client', `ws://127.0.0.1:${await freePort()}`, '--listen-peer', `ws://127.0.0.1:${await freePort()}`, '--log-format', 'json'];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wardend neither started nor exited in 20 s: ${output}`));
    }, 20_000);
    const seen = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('"event":"started"')) {
        child.kill('SIGTERM');
        child.once('close', () => {
          clearTimeout(timer);
          resolve({ outcome: 'started', output });
        });
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.once('exit', (code) => {
      if (output.includes('"event":"started"')) return;
      clearTimeout(timer);
      resolve({ outcome: code ?? -1, output });
    });
  });
}

describe('wardend and WARDEN_* variables', () => {
  it('starts with the CLI\'s, `warden lock`\'s and `npm start`\'s variables set', async () => {
    const env = Object.fromEntries(NOT_WARDEND_ENV.map((name) => [name, name === 'WARDEN_OUTPUT' ? 'json' : name === 'WARDEN_ENDPOINTS' ? 'ws://127.0.0.1:7071' : '7']));
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['WARDEN_ENDPOINTS', 'WARDEN_OUTPUT', 'WARDEN_TIMEOUT', 'WARDEN_FENCING_TOKEN']));
    const { outcome, output } = await startWith(env, 'a');
    expect(outcome, output).toBe('started');
  }, 30_000);

  it('still refuses a misspelt variable of its own, naming it', async () => {
    const { outcome, output } = await startWith({ WARDEN_DATADIR: join(root, 'typo') }, 'b');
    expect(outcome).toBe(1);
    expect(output).toMatch(/Unknown argument: datadir/i);
  }, 30_000);
});
