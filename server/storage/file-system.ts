/**
 * The file-system seam of the write-ahead log: the few synchronous calls the WAL makes, so the
 * real disk (NodeFileSystem, here) and the in-memory fault-injecting twin
 * (memory-file-system.ts) run the same WAL code and the same recovery rules.
 *
 * Writes are synchronous (they land in the page cache). The fdatasync comes in both forms: the
 * update loop awaits syncAsync() so that, while the disk works, the event loop keeps reading
 * and answering sockets and whatever arrives goes into the next batch (group commit); recovery
 * and the simulator use sync().
 *
 * Must never: report a sync as done before the data is durable; swallow a failed sync (the
 * member must stop: data it believed safe may not be).
 */

import { closeSync, fdatasync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import { join } from 'node:path';

export interface WalFile {
  /** Write all of `data` at byte `position` (not yet durable). */
  write(data: Uint8Array, position: number): void;
  /** Make every write so far durable (fdatasync). */
  sync(): void;
  /** sync() off the event loop (the thread pool), so sockets keep flowing while the disk works. */
  syncAsync(): Promise<void>;
  close(): void;
}

export interface WalFileSystem {
  mkdirp(directory: string): void;
  /** File names in a directory (not paths), in any order. */
  list(directory: string): string[];
  /** The whole file. */
  read(path: string): Uint8Array;
  /** Open for writing; with `create`, a new empty file (refused if one exists). */
  open(path: string, create: boolean): WalFile;
  remove(path: string): void;
  rename(from: string, to: string): void;
  /** Make the directory's entries (created, renamed, removed files) durable. */
  syncDirectory(directory: string): void;
  /**
   * Create a new file of `bytes` zeros, durable (its directory entry not yet), off the event
   * loop: the WAL prepares its next segment this way so a cut never stalls the update loop.
   */
  createZeroFilled(path: string, bytes: number): Promise<void>;
  join(...parts: string[]): string;
}

export class NodeFileSystem implements WalFileSystem {
  mkdirp(directory: string): void {
    mkdirSync(directory, { recursive: true });
  }

  list(directory: string): string[] {
    return readdirSync(directory);
  }

  read(path: string): Uint8Array {
    return readFileSync(path);
  }

  open(path: string, create: boolean): WalFile {
    const fd = openSync(path, create ? 'wx+' : 'r+');
    return {
      write(data, position) {
        let written = 0;
        while (written < data.length) written += writeSync(fd, data, written, data.length - written, position + written);
      },
      sync() {
        fdatasyncSync(fd);
      },
      syncAsync() {
        return new Promise<void>((resolve, reject) => fdatasync(fd, (error) => (error === null ? resolve() : reject(error))));
      },
      close() {
        closeSync(fd);
      },
    };
  }

  remove(path: string): void {
    rmSync(path, { force: true });
  }

  rename(from: string, to: string): void {
    renameSync(from, to);
  }

  syncDirectory(directory: string): void {
    const fd = openSync(directory, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async createZeroFilled(path: string, bytes: number): Promise<void> {
    const handle = await openAsync(path, 'wx');
    try {
      const zeros = Buffer.alloc(Math.min(bytes, 1024 * 1024));
      for (let at = 0; at < bytes; at += zeros.length) await handle.write(zeros, 0, Math.min(zeros.length, bytes - at), at);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  join(...parts: string[]): string {
    return join(...parts);
  }
}
