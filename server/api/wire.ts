/**
 * The client protocol's JSON forms, in and out: error frames (each says what the client may do
 * next), answers with bytes as base64, values read from base64 only in its canonical spelling.
 *
 * Must never: accept two spellings of one value (a compare would match what it should not);
 * send an error without its outcome.
 */

import { Buffer } from 'node:buffer';
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
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(wireValue);
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key];
    if (field !== undefined) out[key] = wireValue(field);
  }
  return out;
}
