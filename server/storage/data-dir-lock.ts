/**
 * One member per data directory: two processes writing one WAL and one store would each
 * overwrite what the other acknowledged. The lock is held by the kernel, so it dies with its
 * process (a SIGKILLed member's successor starts at once, with no stale lock to wait out): on
 * Linux, a listening socket in the abstract namespace named after the directory's real path
 * (binding it twice fails however the first holder ended); elsewhere, a pid file whose holder
 * must still be alive. Either way `wardend.lock` in the directory says who holds it.
 *
 * Must never: let a second process in while the first lives; leave the lock held after release.
 */

import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';

export interface DataDirLock {
  release(): void;
}

/** The data directory is held by another live process. */
export class DataDirInUse extends Error {
  constructor(dataDir: string, holder: string) {
    super(`the data directory ${dataDir} is in use by another wardend (${holder}); stop it first, or give this member its own --data-dir`);
    this.name = 'DataDirInUse';
  }
}

const LOCK_FILE = 'wardend.lock';
/**
 * Written first and removed last by `warden snapshot restore`: while it is there the directory
 * holds a restore that did not finish, and wardend refuses to start on it (an empty member that
 * started would vote and take writes as if it had never held anything).
 */
export const RESTORE_MARKER = 'RESTORE-INCOMPLETE';

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true });
  const real = realpathSync(dataDir);
  const lockFile = join(dataDir, LOCK_FILE);
  const holder = (): string => {
    try {
      const { pid } = JSON.parse(readFileSync(lockFile, 'utf8')) as { pid?: unknown };
      return typeof pid === 'number' ? `pid ${pid}` : 'pid unknown';
    } catch {
      return 'pid unknown';
    }
  };
  const note = JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() });
  if (process.platform === 'linux') {
    const name = `\0warden-data-dir:${createHash('sha256').update(real).digest('hex').slice(0, 40)}`;
    const server: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new DataDirInUse(dataDir, holder()) : error));
      server.listen(name, () => resolve());
    });
    server.unref(); // the lock must not keep a stopping process alive
    writeFileSync(lockFile, note);
    return {
      release: () => {
        rmSync(lockFile, { force: true });
        server.close();
      },
    };
  }
  // Elsewhere: a pid file, taken over only when its holder is gone.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, note);
      closeSync(fd);
      return { release: () => rmSync(lockFile, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const { pid } = (() => {
        try {
          return JSON.parse(readFileSync(lockFile, 'utf8')) as { pid?: number };
        } catch {
          return { pid: undefined };
        }
      })();
      if (typeof pid === 'number' && pid !== process.pid && alive(pid)) throw new DataDirInUse(dataDir, `pid ${pid}`);
      rmSync(lockFile, { force: true }); // its holder is gone
    }
  }
  throw new DataDirInUse(dataDir, holder());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
