/**
 * The bytes of a state-machine entry in the replicated log: the proposer's clock, the client
 * stamp (if any) and the command, as MessagePack, which carries node values as raw bytes (JSON
 * cannot without inflating them). Decoding never throws: bytes that do not decode to an
 * entry become a command the state machine refuses with INVALID_ARGUMENT.
 *
 * Must never: change the meaning of an encoded entry between versions without a new format tag
 * (entries outlive the code that wrote them), or let a decoding error escape.
 */

import { Decoder, Encoder } from '@msgpack/msgpack';
import type { ClientStamp } from './sessions.js';
import type { StateCommand } from './state-machine.js';

/**
 * Bumped whenever the encoding of an entry changes meaning. 2: a client stamp carries its
 * session's secret. 3: the entry names the user the proposer authenticated (a fifth field);
 * an entry without a user is still written, and read, as format 2.
 */
export const ENTRY_FORMAT = 3;
const ENTRY_FORMAT_NO_USER = 2;

export interface EncodedEntryBody {
  readonly timeMs: number;
  readonly command: StateCommand;
  readonly client?: ClientStamp;
  readonly user?: string;
}

export interface DecodedEntryBody {
  readonly timeMs: number;
  /** The command, or whatever the bytes held: the state machine validates it. */
  readonly command: unknown;
  readonly client?: ClientStamp;
  readonly user?: string;
}

// One encoder and one decoder for the module: constructing them per entry cost more than the
// encoding itself. Absent optional fields stay absent (ignoreUndefined): encoded as nil they
// would decode as null, which the state machine (rightly) refuses where it expects a number.
// Encoder.encode returns a fresh copy, never a view of its reused buffer.
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

export function encodeEntry(body: EncodedEntryBody): Uint8Array {
  // An entry without a user keeps format 2's bytes: most entries (auth off) pay nothing for it.
  if (body.user === undefined) return encoder.encode([ENTRY_FORMAT_NO_USER, body.timeMs, body.command, body.client ?? null]);
  return encoder.encode([ENTRY_FORMAT, body.timeMs, body.command, body.client ?? null, body.user]);
}

export function decodeEntry(data: Uint8Array): DecodedEntryBody {
  let decoded: unknown;
  try {
    decoded = decoder.decode(data);
  } catch {
    return malformed('the entry is not valid MessagePack');
  }
  if (!Array.isArray(decoded)) return malformed('the entry is not a [format, time, command, client, user] tuple');
  const [format, timeMs, command, client, user] = decoded as [unknown, unknown, unknown, unknown, unknown];
  if (format === ENTRY_FORMAT_NO_USER ? decoded.length !== 4 : format !== ENTRY_FORMAT || decoded.length !== 5) {
    return format === ENTRY_FORMAT || format === ENTRY_FORMAT_NO_USER ? malformed('the entry is not a [format, time, command, client, user] tuple') : malformed(`unknown entry format ${String(typeof format === 'number' ? format : typeof format)}`);
  }
  if (user !== undefined && user !== null && typeof user !== 'string') return malformed('the entry\'s user is not a name');
  const time = typeof timeMs === 'number' && Number.isFinite(timeMs) ? timeMs : 0;
  return { timeMs: time, command, ...(client === null ? {} : { client: client as ClientStamp }), ...(typeof user === 'string' ? { user } : {}) };
}

function malformed(reason: string): DecodedEntryBody {
  // An op the state machine does not know: it answers INVALID_ARGUMENT and changes nothing.
  return { timeMs: 0, command: { op: 'malformedEntry', reason } };
}
