/**
 * The in-memory twin of the WAL's file system, with the faults a real disk has: writes not yet
 * synced are lost at a crash, or land torn (some 512-byte sectors written, others not, in any
 * order), and bits flip in data at rest. The simulator and the WAL's tests run the real WAL on
 * it, so every recovery rule is exercised without a real disk.
 *
 * Directory changes (create, rename, remove) are durable at once: the real WAL syncs the
 * directory after each, so the twin does not model losing them.
 *
 * Must never: read a clock or ambient randomness (a crash takes its choices from the caller's
 * seeded source), or let an unsynced write survive a crash unless the crash chose to keep it.
 */

import type { WalFile, WalFileSystem } from './file-system.js';

export const SECTOR_BYTES = 512;

interface MemoryFile {
  /** What a crash keeps for sure. */
  durable: Uint8Array;
  /** What reads see now: durable plus the writes since the last sync. */
  current: Uint8Array;
  /** The writes since the last sync, oldest first. */
  pending: { position: number; data: Uint8Array }[];
}

/** Thrown by a sync that a simulated power cut interrupted: the write happened, the sync never returned. */
export class PowerCut extends Error {
  constructor(path: string) {
    super(`power cut during fdatasync of ${path}`);
    this.name = 'PowerCut';
  }
}

/** How a crash treats each unsynced write. */
export type CrashFate = 'lost' | 'kept' | 'torn';

export class MemoryFileSystem implements WalFileSystem {
  private readonly files = new Map<string, MemoryFile>();
  private readonly directories = new Set<string>(['']);
  /** Throw on the next sync, as a failing disk does. */
  failNextSync = false;
  /** Throw PowerCut on the next sync: the writes before it are not durable; call crash() next. */
  powerCutAtNextSync = false;

  mkdirp(directory: string): void {
    const parts = directory.split('/');
    for (let i = 1; i <= parts.length; i++) this.directories.add(parts.slice(0, i).join('/'));
  }

  list(directory: string): string[] {
    if (!this.directories.has(directory)) throw new Error(`ENOENT: no such directory ${directory}`);
    const prefix = `${directory}/`;
    return [...this.files.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length));
  }

  read(path: string): Uint8Array {
    return this.file(path).current.slice();
  }

  open(path: string, create: boolean): WalFile {
    if (create) {
      if (this.files.has(path)) throw new Error(`EEXIST: ${path}`);
      this.files.set(path, { durable: new Uint8Array(0), current: new Uint8Array(0), pending: [] });
    }
    const file = this.file(path);
    let closed = false;
    const handle: WalFile = {
      write: (data, position) => {
        if (closed) throw new Error(`EBADF: ${path} is closed`);
        file.current = overlay(file.current, data, position);
        file.pending.push({ position, data: data.slice() });
      },
      sync: () => {
        if (closed) throw new Error(`EBADF: ${path} is closed`);
        if (this.failNextSync) {
          this.failNextSync = false;
          throw new Error(`EIO: fdatasync failed on ${path}`);
        }
        if (this.powerCutAtNextSync) {
          this.powerCutAtNextSync = false;
          throw new PowerCut(path);
        }
        // Apply the pending writes rather than copy the whole file: syncs are frequent, files large.
        // (durable and current are never the same array, so updating durable in place is safe.)
        for (const write of file.pending) file.durable = overlay(file.durable, write.data, write.position);
        file.pending = [];
      },
      syncAsync: async () => handle.sync(),
      close: () => {
        closed = true;
      },
    };
    return handle;
  }

  remove(path: string): void {
    this.files.delete(path);
  }

  rename(from: string, to: string): void {
    const file = this.file(from);
    this.files.delete(from);
    this.files.set(to, file);
  }

  async createZeroFilled(path: string, bytes: number): Promise<void> {
    if (this.files.has(path)) throw new Error(`EEXIST: ${path}`);
    this.files.set(path, { durable: new Uint8Array(bytes), current: new Uint8Array(bytes), pending: [] });
  }

  syncDirectory(directory: string): void {
    if (!this.directories.has(directory)) throw new Error(`ENOENT: no such directory ${directory}`);
  }

  join(...parts: string[]): string {
    return parts.join('/').replace(/\/+/g, '/');
  }

  /** An independent copy, unsynced writes included: to ask what a crash *now* would leave, without crashing this one. */
  clone(): MemoryFileSystem {
    const copy = new MemoryFileSystem();
    for (const directory of this.directories) copy.directories.add(directory);
    for (const [path, file] of this.files) {
      copy.files.set(path, { durable: file.durable.slice(), current: file.current.slice(), pending: file.pending.map((w) => ({ position: w.position, data: w.data.slice() })) });
    }
    return copy;
  }

  exists(path: string): boolean {
    return this.files.has(path);
  }

  /**
   * A power cut. Each unsynced write, oldest first, meets the fate `fate` picks for it: lost,
   * kept, or torn (each of its sectors kept or lost by `keepSector`). Afterwards every file
   * holds only what survived, and all of it counts as durable.
   */
  crash(fate: (path: string, write: number) => CrashFate = () => 'lost', keepSector: () => boolean = () => false): void {
    for (const [path, file] of this.files) {
      let bytes = file.durable;
      file.pending.forEach((write, n) => {
        const chosen = fate(path, n);
        if (chosen === 'kept') bytes = overlay(bytes, write.data, write.position);
        if (chosen !== 'torn') return;
        // Sectors are aligned on the disk, not in the write: the first and last may be partial.
        const end = write.position + write.data.length;
        for (let start = write.position; start < end; ) {
          const sectorEnd = Math.min(end, (Math.floor(start / SECTOR_BYTES) + 1) * SECTOR_BYTES);
          if (keepSector()) bytes = overlay(bytes, write.data.subarray(start - write.position, sectorEnd - write.position), start);
          start = sectorEnd;
        }
      });
      file.durable = bytes;
      file.current = bytes.slice();
      file.pending = [];
    }
  }

  /** Flip one bit of data at rest (bit rot, a bad sector). */
  flipBit(path: string, byteOffset: number, bit = 0): void {
    const file = this.file(path);
    if (byteOffset >= file.current.length) throw new Error(`flipBit: ${path} has only ${file.current.length} bytes`);
    file.current[byteOffset]! ^= 1 << bit;
    if (byteOffset < file.durable.length) file.durable[byteOffset]! ^= 1 << bit;
  }

  size(path: string): number {
    return this.file(path).current.length;
  }

  private file(path: string): MemoryFile {
    const file = this.files.get(path);
    if (file === undefined) throw new Error(`ENOENT: no such file ${path}`);
    return file;
  }
}

/** `base` with `data` written at `position`, grown (zero-filled) as needed. */
function overlay(base: Uint8Array, data: Uint8Array, position: number): Uint8Array {
  const size = Math.max(base.length, position + data.length);
  const out = size === base.length ? base : new Uint8Array(size);
  if (out !== base) out.set(base);
  out.set(data, position);
  return out;
}
