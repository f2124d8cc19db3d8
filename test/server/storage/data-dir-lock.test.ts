/**
 * One member per data directory (server/storage/data-dir-lock.ts): a second lock on a held
 * directory is refused with a message naming it, a released lock can be taken again, and a
 * lock file left by a process that is gone (SIGKILL) does not keep a new member out.
 *
 * Must never: leave a lock held or a folder behind (each test releases and removes its own).
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirInUse, lockDataDir } from '../../../server/storage/data-dir-lock.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});
const fresh = (): string => {
  const folder = mkdtempSync(join(tmpdir(), 'warden-lock-'));
  folders.push(folder);
  return join(folder, 'data');
};

describe('the data directory lock', () => {
  it('refuses a second holder while the first lives, naming the directory, and lets one in once released', async () => {
    const dir = fresh();
    const first = await lockDataDir(dir);
    const second = await lockDataDir(dir).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(DataDirInUse);
    expect((second as Error).message).toContain(dir);
    expect((second as Error).message).toContain(`pid ${process.pid}`);
    first.release();
    const again = await lockDataDir(dir);
    again.release();
  });

  it('is not kept by the lock file of a process that is gone', async () => {
    const dir = fresh();
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!; // a pid that has exited
    (await lockDataDir(dir)).release(); // makes the directory
    writeFileSync(join(dir, 'wardend.lock'), JSON.stringify({ pid: gone }));
    const lock = await lockDataDir(dir);
    lock.release();
  });
});
