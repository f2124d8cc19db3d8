/**
 * Values and nodes as users see them: a value goes out as `string` (UTF-8) or `Uint8Array` and
 * comes back as a `string` unless the caller asks for bytes (`as: 'bytes'`). On the wire a value
 * is canonical base64 (shared/protocol.ts). Under Node the global Buffer does the base64 work
 * (native, fast); in a browser, btoa/atob.
 *
 * Must never: import a Node builtin (this file is bundled for browsers); turn bytes that are not
 * UTF-8 into a string silently when bytes were asked for.
 */

/** A value to write: text (stored as UTF-8) or bytes. */
export type Value = string | Uint8Array;

/** How a read returns values: `'string'` (UTF-8, the default) or `'bytes'`. */
export type ValueAs = 'string' | 'bytes';
export type ValueOf<A extends ValueAs> = A extends 'bytes' ? Uint8Array : string;

/** A node's metadata, as ZooKeeper's Stat and etcd's KeyValue carry it. */
export interface Stat {
  /** The revision that created this node (a fencing token for whoever created it). */
  readonly createRevision: number;
  /** The revision of the last change to its value. */
  readonly modRevision: number;
  /** Changes to its value since creation (0 when created): compare-and-set uses it. */
  readonly version: number;
  /** Changes to its set of children. */
  readonly childrenVersion: number;
  readonly numChildren: number;
  /** The lease the node dies with (an ephemeral node), else null. */
  readonly lease: number | null;
}

export interface WardenNode<V = string> {
  readonly path: string;
  readonly value: V;
  readonly stat: Stat;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

interface BufferLike {
  from(data: Uint8Array | string, encoding?: string): Uint8Array & { toString(encoding: string): string };
}
const NodeBuffer = (globalThis as { Buffer?: BufferLike }).Buffer;

export function toBytes(value: Value): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

export function encodeValue(value: Value | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (NodeBuffer !== undefined) return typeof value === 'string' ? NodeBuffer.from(value, 'utf8').toString('base64') : NodeBuffer.from(value).toString('base64');
  const bytes = toBytes(value);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function decodeBytes(base64: string): Uint8Array {
  if (NodeBuffer !== undefined) {
    const buffer = NodeBuffer.from(base64, 'base64');
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function decodeValue<A extends ValueAs>(base64: string, as: A): ValueOf<A> {
  if (as === 'bytes') return decodeBytes(base64) as ValueOf<A>;
  if (NodeBuffer !== undefined) return NodeBuffer.from(base64, 'base64').toString('utf8') as ValueOf<A>;
  return decoder.decode(decodeBytes(base64)) as ValueOf<A>;
}

/** A node from its wire form `{path, value, stat}` (a write's answer has no value: it reads as empty). */
export function decodeNode<A extends ValueAs>(wire: unknown, as: A): WardenNode<ValueOf<A>> {
  const w = wire as { path: string; value?: string; stat: Stat };
  return { path: w.path, value: decodeValue(w.value ?? '', as), stat: w.stat };
}
