/**
 * The client protocol's JSON forms, in and out: error frames (each says what the client may do
 * next), answers with bytes as base64, values read from base64 only in its canonical spelling.
 *
 * Must never: accept two spellings of one value (a compare would match what it should not);
 * send an error without its outcome.
 */

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { ERROR_OUTCOMES, type ErrorCode } from '../../shared/errors.js';

/** `{ ok: false, error: { code, message, outcome, ...extra } }`; `outcome` tells retry, unknown or final. */
export function errorFrame(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): { ok: false; error: Record<string, unknown> } {
  return { ok: false, error: { code, message, outcome: ERROR_OUTCOMES[code], ...extra } };
}

/**
 * Bytes from base64, or null unless `text` is the one canonical spelling of them (padded to a
 * multiple of four, no bits set past the data): "A" is not an empty value, nor "AAAAA" "AAAA".
 */
export function decodeBase64(text: string): Uint8Array | null {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return null;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A copy fit for JSON.stringify: Uint8Arrays as base64 strings, undefined fields dropped. */
export function wireValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) {
    const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
    if (text.length >= LARGE_VALUE_CHARS) largeSeen?.push(text);
    return text;
  }
  if (Array.isArray(value)) return value.map(wireValue);
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key];
    if (field !== undefined) out[key] = wireValue(field);
  }
  return out;
}

/**
 * A base64 value this long is spliced into its frame's bytes by `encodeAnswer` rather than
 * copied through JSON.stringify: a 1 MiB value would otherwise be built three times (base64,
 * the frame's JSON string, the socket's bytes), and a flood of such reads leaves the member
 * hundreds of megabytes of garbage strings (RSS ~140 -> ~400 MiB under ten connections reading
 * a 1 MiB node and not reading answers; ~300 MiB with the splice).
 */
const LARGE_VALUE_CHARS = 64 * 1024;
/** The large base64 strings an answer holds (wireAnswer sets it; JSON.stringify skips symbols, spreads copy them). */
const LARGE_VALUES = Symbol('large base64 values');
let largeSeen: string[] | null = null;

/** `wireValue` for an answer, noting on it the large base64 values it holds (see encodeAnswer). */
export function wireAnswer(value: unknown): unknown {
  largeSeen = [];
  try {
    const out = wireValue(value);
    if (largeSeen.length > 0 && out !== null && typeof out === 'object') (out as Record<symbol, unknown>)[LARGE_VALUES] = largeSeen;
    return out;
  } finally {
    largeSeen = null;
  }
}

/**
 * The stand-in for a large value while the rest of its frame is stringified: a NUL (base64 never
 * has one) and a random tag drawn at start, so no client can name it (a request id equal to the
 * stand-in would only turn the splice off for its own answers; the count check catches any match).
 */
const STAND_IN = `\u0000${randomBytes(8).toString('hex')}`;
const STAND_IN_JSON = JSON.stringify(STAND_IN);

/**
 * A frame's bytes to send as text: its JSON, with each large base64 value it holds (noted by
 * wireAnswer) written once, straight into the bytes (base64 needs no JSON escaping). Without
 * large values, the JSON string itself.
 */
export function encodeAnswer(frame: object): string | Buffer {
  const large = (frame as Record<symbol, unknown>)[LARGE_VALUES] as string[] | undefined;
  if (large === undefined) return JSON.stringify(frame);
  const spliced: string[] = [];
  const text = JSON.stringify(frame, (_key, value: unknown) => {
    if (typeof value === 'string' && value.length >= LARGE_VALUE_CHARS && large.includes(value)) {
      spliced.push(value);
      return STAND_IN;
    }
    return value;
  });
  const parts = text.split(STAND_IN_JSON);
  // Every stand-in is one the replacer wrote (no other string can hold its random tag); should
  // one ever match besides, the count is off and the frame goes as plain JSON.
  if (parts.length !== spliced.length + 1) return JSON.stringify(frame);
  let size = 0;
  for (const part of parts) size += Buffer.byteLength(part);
  for (const value of spliced) size += value.length + 2;
  const bytes = Buffer.allocUnsafe(size);
  let at = bytes.write(parts[0]!, 0);
  for (let i = 0; i < spliced.length; i++) {
    at += bytes.write(`"`, at, 'latin1');
    at += bytes.write(spliced[i]!, at, 'latin1');
    at += bytes.write(`"`, at, 'latin1');
    at += bytes.write(parts[i + 1]!, at);
  }
  return bytes;
}
