/**
 * How many bytes a node takes in a JSON frame, known before the frame is built: what lets a
 * member refuse (or end a page) before it spends memory on an answer that would pass its
 * answer bound. Upper bounds, exact for what varies (values, paths), generous for the rest.
 *
 * Must never: under-count (a bound computed from these must hold), or import a Node builtin.
 */

/** A node's stat object in JSON, at most (six fields, each number at most 16 digits). */
export const STAT_WIRE_BYTES_MAX = 200;

/** Bytes of `text` as a JSON string: quotes, escapes and UTF-8. */
export function jsonStringBytes(text: string): number {
  let bytes = 2;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit === 0x22 || unit === 0x5c) bytes += 2;
    else if (unit < 0x20) bytes += 6;
    else if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      bytes += 4; // a surrogate pair: one 4-byte code point
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** Bytes of `byteLength` bytes in base64, with its quotes. */
export function base64Bytes(byteLength: number): number {
  return 4 * Math.ceil(byteLength / 3) + 2;
}

/** A node `{path, value, stat}` in JSON, at most. */
export function nodeWireBytes(node: { readonly path: string; readonly value: Uint8Array }): number {
  return 32 + jsonStringBytes(node.path) + base64Bytes(node.value.byteLength) + STAT_WIRE_BYTES_MAX;
}

/** A node without its value `{path, stat}` in JSON, at most: what a write answers. */
export function statWireBytes(path: string): number {
  return 32 + jsonStringBytes(path) + STAT_WIRE_BYTES_MAX;
}
