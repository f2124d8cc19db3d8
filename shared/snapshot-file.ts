/**
 * The snapshot file (`warden snapshot save` writes it, `status` and `restore` read it): what a
 * member streamed, framed so a damaged or cut file is told apart from a whole one.
 *
 *   "WARDEN SNAPSHOT\n"            16 bytes: what the file is
 *   u32 LE n, n bytes              the header, JSON: format, when, member, applied index, term, voters
 *   (u32 LE n > 0, n bytes)*       the member's chunks, in order (each CRC-checked by restore)
 *   u32 LE 0                       the end of the chunks
 *   u32 LE n, n bytes              the trailer, JSON: chunk count, bytes, and what the store held
 *   32 bytes                       SHA-256 of everything before it
 *
 * Pure: the caller brings the bytes and the hash (shared/ runs in browsers too).
 *
 * Must never: hand out a part of a file before checking the part is whole and in bounds; end
 * without the checksum checked (a reader that stops early learns nothing of the whole file).
 */

export const SNAPSHOT_FILE_MAGIC = 'WARDEN SNAPSHOT\n';
export const SNAPSHOT_FILE_FORMAT = 1;
/** A chunk is a megabyte of records and at most one node value more (16 MiB at the ceiling). */
export const SNAPSHOT_CHUNK_FRAME_MAX = 64 * 1024 * 1024;
const JSON_PART_MAX = 1024 * 1024;
export const SNAPSHOT_DIGEST_BYTES = 32;

export interface SnapshotFileHeader {
  readonly format: number;
  /** ISO time the save began. */
  readonly createdAt: string;
  readonly member: string;
  readonly appliedIndex: number;
  readonly term: number;
  readonly voters: readonly string[];
}

/** What a snapshot holds, counted by the member as it streamed its store's records. */
export interface SnapshotSummary {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactRevision: number;
  /** Live nodes (the root not counted). */
  readonly nodes: number;
  /** Node versions kept, deleted ones included (the history a restore brings back). */
  readonly versions: number;
  readonly leases: number;
  readonly sessions: number;
}

export interface SnapshotFileTrailer {
  readonly chunks: number;
  /** Bytes of the chunks together. */
  readonly chunkBytes: number;
  readonly summary: SnapshotSummary;
}

export type SnapshotFilePart =
  | { readonly kind: 'header'; readonly header: SnapshotFileHeader }
  | { readonly kind: 'chunk'; readonly seq: number; readonly bytes: Uint8Array }
  | { readonly kind: 'end'; readonly trailer: SnapshotFileTrailer; readonly sha256: string };

/** A running hash (node:crypto's sha256 in Node). */
export interface Hasher {
  update(bytes: Uint8Array): void;
  digest(): Uint8Array;
}

/** The file is not a whole snapshot: what is wrong, in words an operator can act on. */
export class SnapshotFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFileError';
  }
}

const utf8 = new TextEncoder();

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

function jsonPart(value: unknown): Uint8Array {
  const body = utf8.encode(JSON.stringify(value));
  const part = new Uint8Array(4 + body.length);
  part.set(u32(body.length), 0);
  part.set(body, 4);
  return part;
}

/** The magic and the header: the file's first bytes. */
export function encodeSnapshotFileStart(header: SnapshotFileHeader): Uint8Array {
  const magic = utf8.encode(SNAPSHOT_FILE_MAGIC);
  const json = jsonPart(header);
  const start = new Uint8Array(magic.length + json.length);
  start.set(magic, 0);
  start.set(json, magic.length);
  return start;
}

/** The length that goes before a chunk. */
export function encodeChunkLength(chunk: Uint8Array): Uint8Array {
  if (chunk.length === 0 || chunk.length > SNAPSHOT_CHUNK_FRAME_MAX) throw new SnapshotFileError(`a chunk of ${chunk.length} bytes cannot be framed`);
  return u32(chunk.length);
}

/** The end of the chunks and the trailer; the digest of everything so far follows. */
export function encodeSnapshotFileEnd(trailer: SnapshotFileTrailer): Uint8Array {
  const json = jsonPart(trailer);
  const end = new Uint8Array(4 + json.length);
  end.set(json, 4);
  return end;
}

/** Reads exactly the bytes asked for from a stream of blocks. */
class ByteReader {
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private done = false;
  offset = 0;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  /** Exactly `count` bytes, or null if the stream ends first. */
  async take(count: number): Promise<Uint8Array | null> {
    while (this.bufferedBytes < count && !this.done) {
      const next = await this.source.next();
      if (next.done === true) this.done = true;
      else if (next.value.length > 0) {
        this.buffered.push(next.value);
        this.bufferedBytes += next.value.length;
      }
    }
    if (this.bufferedBytes < count) return null;
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const block = this.buffered[0]!;
      const used = Math.min(block.length, count - filled);
      out.set(block.subarray(0, used), filled);
      filled += used;
      if (used === block.length) this.buffered.shift();
      else this.buffered[0] = block.subarray(used);
    }
    this.bufferedBytes -= count;
    this.offset += count;
    return out;
  }

  /** Whether any byte is left. */
  async atEnd(): Promise<boolean> {
    return (await this.take(1)) === null;
  }
}

/**
 * The parts of a snapshot file, in order, each checked for bounds and shape; the last part
 * ('end') comes only once the SHA-256 matched and nothing followed it. Throws SnapshotFileError.
 */
export async function* readSnapshotFile(source: AsyncIterable<Uint8Array>, hasher: Hasher): AsyncGenerator<SnapshotFilePart> {
  const iterator = source[Symbol.asyncIterator]();
  const reader = new ByteReader(iterator);
  try {
    const need = async (count: number, what: string): Promise<Uint8Array> => {
      const bytes = await reader.take(count);
      if (bytes === null) throw new SnapshotFileError(`the file is cut short: it ends inside ${what} (at byte ${reader.offset}); it was not saved whole`);
      hasher.update(bytes);
      return bytes;
    };
    const length = async (what: string): Promise<number> => {
      const bytes = await need(4, what);
      return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    };
    const json = async (what: string): Promise<unknown> => {
      const size = await length(what);
      if (size > JSON_PART_MAX) throw new SnapshotFileError(`the ${what} claims ${size} bytes, more than any snapshot's: the file is damaged`);
      try {
        return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await need(size, what)));
      } catch (error) {
        if (error instanceof SnapshotFileError) throw error;
        throw new SnapshotFileError(`the ${what} is not readable JSON: the file is damaged`);
      }
    };

    const magic = await reader.take(SNAPSHOT_FILE_MAGIC.length);
    if (magic === null || new TextDecoder().decode(magic) !== SNAPSHOT_FILE_MAGIC) throw new SnapshotFileError('this is not a Warden snapshot file (it does not begin with "WARDEN SNAPSHOT")');
    hasher.update(magic);
    const header = (await json('header')) as SnapshotFileHeader;
    if (
      typeof header !== 'object' || header === null || header.format !== SNAPSHOT_FILE_FORMAT || !Number.isSafeInteger(header.appliedIndex) || !Number.isSafeInteger(header.term) ||
      !Array.isArray(header.voters) || !header.voters.every(isName) || !isName(header.member) || typeof header.createdAt !== 'string' || !/^[0-9T:.Z+-]{1,40}$/.test(header.createdAt)
    ) {
      throw new SnapshotFileError(`the header is not a format ${SNAPSHOT_FILE_FORMAT} snapshot header (a newer Warden's file, or damaged)`);
    }
    yield { kind: 'header', header };
    let chunks = 0;
    let chunkBytes = 0;
    for (;;) {
      const size = await length(`the length of chunk ${chunks}`);
      if (size === 0) break;
      if (size > SNAPSHOT_CHUNK_FRAME_MAX) throw new SnapshotFileError(`chunk ${chunks} claims ${size} bytes, more than any chunk's: the file is damaged`);
      const bytes = await need(size, `chunk ${chunks}`);
      yield { kind: 'chunk', seq: chunks, bytes };
      chunks += 1;
      chunkBytes += size;
    }
    const trailer = (await json('trailer')) as SnapshotFileTrailer;
    const summary = (trailer as { summary?: unknown } | null)?.summary as Record<string, unknown> | null | undefined;
    const counts = ['appliedIndex', 'revision', 'compactRevision', 'nodes', 'versions', 'leases', 'sessions'];
    if (typeof trailer !== 'object' || trailer === null || trailer.chunks !== chunks || trailer.chunkBytes !== chunkBytes || typeof summary !== 'object' || summary === null || !counts.every((key) => Number.isSafeInteger(summary[key]))) {
      throw new SnapshotFileError(`the trailer does not match the ${chunks} chunks read: the file is damaged`);
    }
    const stored = await reader.take(SNAPSHOT_DIGEST_BYTES);
    if (stored === null) throw new SnapshotFileError('the file is cut short: its checksum is missing; it was not saved whole');
    const computed = hasher.digest();
    if (!sameBytes(stored, computed)) throw new SnapshotFileError(`checksum mismatch: the file's SHA-256 is ${hex(computed)}, it says ${hex(stored)}: the file is damaged`);
    if (!(await reader.atEnd())) throw new SnapshotFileError('bytes follow the checksum: the file is damaged or two files were joined');
    yield { kind: 'end', trailer, sha256: hex(computed) };
  } finally {
    await iterator.return?.();
  }
}

/** A member's name as the file may carry it: printable, no control characters (they reach terminals). */
function isName(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(value);
}

export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
