/**
 * The peer frames' bytes: MessagePack (entries and snapshots travel as raw bytes), encoded
 * without undefined fields and decoded only through the validator (peer-frames.ts), so nothing
 * from the network is trusted by a cast.
 *
 * Must never: hand out a decoded frame the validator refused; decode bytes into Buffers (a
 * Buffer's slice is a view, and entry data is kept).
 */

import { Decoder, Encoder } from '@msgpack/msgpack';
import type { RawData } from 'ws';
import type { LeaseStatus } from '../node/lease-keeper.js';
import type { LeaseRequest } from '../node/runtime.js';
import type { RequestError } from '../node/waiting-list.js';
import type { Message, NodeId, SnapshotMessage } from '../raft/types.js';
import type { StateResult } from '../state/state-machine.js';
import { validFrame } from './peer-frames.js';

export type Frame =
  | { readonly k: 'hello'; readonly from: NodeId; readonly clientUrl: string; readonly cluster?: string; readonly ts?: number; readonly nonce?: string; readonly proof?: string }
  | { readonly k: 'raft'; readonly m: Message }
  | { readonly k: 'fwd'; readonly id: number; readonly entry: Uint8Array }
  | { readonly k: 'fwd-ok'; readonly id: number; readonly result: StateResult }
  | { readonly k: 'lease'; readonly id: number; readonly request: LeaseRequest }
  | { readonly k: 'lease-ok'; readonly id: number; readonly answers: LeaseStatus[] }
  | { readonly k: 'fwd-err'; readonly id: number; readonly code: RequestError['code']; readonly message: string; readonly leader: NodeId | null }
  | { readonly k: 'snap'; readonly id: number; readonly m: SnapshotMessage }
  | { readonly k: 'snap-chunk'; readonly id: number; readonly chunk: Uint8Array }
  | { readonly k: 'snap-end'; readonly id: number };;

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

export function encodeFrame(frame: Frame): Uint8Array {
  return encoder.encode(frame);
}

/** A frame off the wire, checked whole; null for anything that is not a well-formed peer frame. */
export function decodeFrame(data: RawData): Frame | null {
  try {
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    // A plain Uint8Array view: decoded bytes (entry data) must not be Buffers, whose slice() is a view.
    // Checked whole before anything reads it: a peer's garbage is refused, never trusted by a cast.
    return validFrame<Frame>(decoder.decode(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)));
  } catch {
    return null;
  }
}
