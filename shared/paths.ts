/**
 * Path rules for Warden's hierarchical namespace (`/`, `/app`, `/app/config/db`): what a valid
 * path is, the small pure helpers that take paths apart and put them together, ZooKeeper-style
 * sequential names, and the order in which paths sort.
 *
 * Pattern: Consistent Core's namespace, shaped like ZooKeeper's tree; errors are values. A check
 * answers `{ ok: true, path }` or `{ ok: false, error }` with a `WardenError` of code
 * INVALID_ARGUMENT whose message names the problem and where it is.
 *
 * The rules:
 * - A path is the root `/`, or `/` followed by one or more segments separated by single `/`.
 *   No empty segment (`//`), no trailing `/` (except the root itself), no `.` or `..` segment.
 *   Paths are taken as given: never normalized, trimmed or case-folded (`é` written as one code
 *   point and as `e` + U+0301 are two different paths).
 * - A segment may hold any Unicode text except `/`, the control characters U+0000–U+001F and
 *   U+007F–U+009F, unpaired UTF-16 surrogates, and the noncharacters U+FFFE and U+FFFF. (Other
 *   noncharacters, such as U+FDD0, are allowed.)
 * - The whole path is at most PATH_BYTES_MAX (4,096) bytes in UTF-8.
 * - Checks run in this order and report the first problem met: not a string; does not start
 *   with `/`; too many bytes; then a left-to-right scan that reports the leftmost bad character,
 *   empty segment, dot segment or trailing `/`. Positions are 0-based JavaScript string indexes
 *   (UTF-16 code units).
 *
 * Order (`comparePaths`): segment by segment, a path before its extensions, segments compared
 * by Unicode code point. Every path's descendants thus form one contiguous run directly after
 * it, which subtree range reads need. Plain string comparison does not give that: `-` (0x2D)
 * sorts before `/` (0x2F), so `/a-b` would land between `/a` and `/a/b`. Code points rather
 * than UTF-16 code units, because code point order is UTF-8 byte order: a bytewise-ordered store
 * (RocksDB's default comparator) keeps exactly this order for keys written as the path's UTF-8
 * with each `/` as a byte below 0x20 (no valid segment holds such a byte).
 *
 * Must never: throw out of a check, for any input of any type; import server/ or client/ or a
 * Node-only API (shared/ runs in a browser too); rewrite a path to make it valid. The helpers
 * (`parentOf`, `joinPath`, `sequentialPath`, ...) take paths that already passed `checkPath`;
 * on other strings their answer is unspecified, but they do not throw either.
 */

import { WardenError } from './errors.js';

/** The most UTF-8 bytes a whole path may take. */
export const PATH_BYTES_MAX = 4096;

/** The root of the namespace: the only path that ends with `/`. */
export const ROOT = '/';

/** Digits in the zero-padded counter of a sequential node name (`/q/job-0000000007`). */
export const SEQUENCE_DIGITS = 10;

/** The largest counter that fits SEQUENCE_DIGITS digits. Larger counters are refused, never wrapped. */
export const SEQUENCE_COUNTER_MAX = 9_999_999_999;

/** The outcome of a check: the valid path, or an INVALID_ARGUMENT error saying what is wrong. */
export type PathCheck = { ok: true; path: string } | { ok: false; error: WardenError };

/** How many characters of a path an error message quotes before it cuts with an ellipsis. */
const QUOTED_CODE_POINTS_MAX = 80;

const SLASH = 0x2f;
const DOT = 0x2e;
const utf8 = new TextEncoder();

/** Checks that `value` is a valid path (see the rules above). Never throws. */
export function checkPath(value: unknown): PathCheck {
  const problem = pathProblem(value);
  if (problem === null) return { ok: true, path: value as string };
  return { ok: false, error: new WardenError('INVALID_ARGUMENT', problem) };
}

/** True when `value` is a valid path. Never throws. */
export function isValidPath(value: unknown): value is string {
  return pathProblem(value) === null;
}

/** The parent of a path (`/a/b` → `/a`, `/a` → `/`), or null for the root. */
export function parentOf(path: string): string | null {
  if (path === ROOT) return null;
  const lastSlash = path.lastIndexOf('/');
  return lastSlash <= 0 ? ROOT : path.slice(0, lastSlash);
}

/** The last segment of a path (`/a/b` → `b`); the root's is ''. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The path of the child `name` under `parent` (`/` + `a` → `/a`, `/a` + `b` → `/a/b`). */
export function joinPath(parent: string, name: string): string {
  return parent === ROOT ? ROOT + name : `${parent}/${name}`;
}

/** The segments of a path, root first (`/a/b` → ['a', 'b']; the root has none). */
export function segmentsOf(path: string): string[] {
  return path === ROOT ? [] : path.slice(1).split('/');
}

/** The UTF-8 bytes of `text` (a path's size, as the path limits count it). */
export function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 units
      index += 1;
    } else bytes += 2;
  }
  return bytes;
}

/** How many segments a path has: the root is 0, `/a` is 1, `/a/b` is 2. */
export function depthOf(path: string): number {
  if (path === ROOT) return 0;
  let depth = 0;
  for (let index = 0; index < path.length; index++) {
    if (path.charCodeAt(index) === SLASH) depth++;
  }
  return depth;
}

/**
 * True when `ancestor` is a strict ancestor of `path`: a path is not its own ancestor, the root
 * is the ancestor of every other path, and `/a` is an ancestor of `/a/b` but not of `/ab`.
 */
export function isAncestorOf(ancestor: string, path: string): boolean {
  if (ancestor === path) return false;
  if (ancestor === ROOT) return path.startsWith(ROOT);
  return path.length > ancestor.length + 1 && path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === SLASH;
}

/**
 * A total order on paths (on all strings, in fact): segment by segment, a path before its
 * extensions, segments by Unicode code point. Returns a negative number, 0 or a positive number.
 * Every path's descendants sort as one contiguous run directly after it.
 */
export function comparePaths(a: string, b: string): number {
  const sharedLength = Math.min(a.length, b.length);
  // Deep paths share long prefixes (a subtree's paths all begin with its root): skip equal
  // stretches a block at a time with the engine's own string equality before comparing units.
  let index = 0;
  while (index + PREFIX_BLOCK <= sharedLength && a.slice(index, index + PREFIX_BLOCK) === b.slice(index, index + PREFIX_BLOCK)) index += PREFIX_BLOCK;
  for (; index < sharedLength; index++) {
    const unitA = a.charCodeAt(index);
    const unitB = b.charCodeAt(index);
    if (unitA !== unitB) return orderKey(unitA) - orderKey(unitB);
  }
  return a.length - b.length;
}

/** Code units compared at once while skipping a shared prefix (comparePaths). */
const PREFIX_BLOCK = 64;

/**
 * The sequential node path for `counter` under `basePath`: the counter zero-padded to
 * SEQUENCE_DIGITS digits is appended (`/q/job-` + 7 → `/q/job-0000000007`; a base ending in `/`
 * makes the name just the digits: `/q/` + 7 → `/q/0000000007`). Assumes valid input; use
 * `checkSequentialPath` for input that may be bad.
 */
export function sequentialPath(basePath: string, counter: number): string {
  return basePath + String(counter).padStart(SEQUENCE_DIGITS, '0');
}

/**
 * `sequentialPath` with every input checked: INVALID_ARGUMENT when the counter is not an integer
 * from 0 to SEQUENCE_COUNTER_MAX, or when the resulting path is not valid (the base may end with
 * `/`; the result is what must be a valid path, at most PATH_BYTES_MAX bytes). Never throws.
 */
export function checkSequentialPath(basePath: unknown, counter: unknown): PathCheck {
  if (typeof basePath !== 'string') {
    return invalid(`sequential base path must be a string, got ${kindOf(basePath)}`);
  }
  if (typeof counter !== 'number') {
    return invalid(`sequence counter must be a number, got ${kindOf(counter)}`);
  }
  if (!Number.isInteger(counter) || counter < 0 || counter > SEQUENCE_COUNTER_MAX) {
    return invalid(
      `sequence counter ${String(counter)} is out of range; it must be an integer from 0 to ${SEQUENCE_COUNTER_MAX} ` +
        `(${SEQUENCE_DIGITS} digits)`,
    );
  }
  const path = sequentialPath(basePath, counter);
  const problem = pathProblem(path);
  if (problem !== null) return invalid(`sequential base path ${quote(basePath)} gives an invalid path: ${problem}`);
  return { ok: true, path };
}

/** The message for the first problem with `value` as a path, or null when it is valid. */
function pathProblem(value: unknown): string | null {
  if (typeof value !== 'string') return `path must be a string, got ${kindOf(value)}`;
  if (value.charCodeAt(0) !== SLASH) return `path must start with "/", got ${quote(value)}`;
  // The size bound comes before the character scan, so an oversized path costs one native encode.
  const bytes = utf8.encode(value).length;
  if (bytes > PATH_BYTES_MAX) return `path ${quote(value)} is ${bytes} bytes; the limit is ${PATH_BYTES_MAX}`;
  if (value === ROOT) return null;

  let segmentStart = 1;
  for (let index = 1; index <= value.length; index++) {
    const atEnd = index === value.length;
    const unit = atEnd ? SLASH : value.charCodeAt(index);
    if (unit === SLASH) {
      const segmentLength = index - segmentStart;
      if (segmentLength === 0) {
        return atEnd
          ? `path ${quote(value)} has a trailing "/" at position ${index - 1}; only the root "/" may end with "/"`
          : `path ${quote(value)} has an empty segment at position ${segmentStart}`;
      }
      if (isDotSegment(value, segmentStart, segmentLength)) {
        const segment = value.slice(segmentStart, index);
        return `path ${quote(value)} has a "${segment}" segment at position ${segmentStart}, which is not allowed`;
      }
      segmentStart = index + 1;
      continue;
    }
    if (isControl(unit)) {
      return `path ${quote(value)} has the control character ${codePointName(unit)} at position ${index}`;
    }
    if (unit === 0xfffe || unit === 0xffff) {
      return `path ${quote(value)} has the noncharacter ${codePointName(unit)} at position ${index}`;
    }
    if (isLeadSurrogate(unit) && index + 1 < value.length && isTrailSurrogate(value.charCodeAt(index + 1))) {
      index++; // a well-formed pair: one character outside the Basic Multilingual Plane
      continue;
    }
    if (isLeadSurrogate(unit) || isTrailSurrogate(unit)) {
      return `path ${quote(value)} has an unpaired surrogate ${codePointName(unit)} at position ${index}`;
    }
  }
  return null;
}

function invalid(message: string): PathCheck {
  return { ok: false, error: new WardenError('INVALID_ARGUMENT', message) };
}

function isDotSegment(path: string, start: number, length: number): boolean {
  if (length === 1) return path.charCodeAt(start) === DOT;
  if (length === 2) return path.charCodeAt(start) === DOT && path.charCodeAt(start + 1) === DOT;
  return false;
}

function isControl(unit: number): boolean {
  return unit <= 0x1f || (unit >= 0x7f && unit <= 0x9f);
}

function isLeadSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isTrailSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * Where a UTF-16 code unit sorts in `comparePaths`. `/` sorts below everything, so a path comes
 * before its extensions and its descendants sit right after it. Surrogates (which only appear as
 * the first differing unit when two characters outside the BMP differ, or one such character
 * meets a BMP character) move above U+E000–U+FFFF, which turns code unit order into code point
 * order. The map is one-to-one, so the order stays total on any strings.
 */
function orderKey(unit: number): number {
  if (unit === SLASH) return -1;
  if (unit < 0xd800) return unit;
  return unit <= 0xdfff ? unit + 0x2000 : unit - 0x800;
}

/** `U+0007`-style name of a code unit. */
function codePointName(unit: number): string {
  return `U+${unit.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** What a non-path value is, for messages: `undefined`, `null`, `number`, `array`, `object`, ... */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  try {
    return Array.isArray(value) ? 'array' : 'object';
  } catch {
    return 'object'; // Array.isArray throws on a revoked Proxy; a check must not
  }
}

/**
 * A path quoted for a message: in double quotes, `"` and `\` escaped, every character the rules
 * refuse written as `\uXXXX` (so a message never carries a raw control character or a lone
 * surrogate), cut after QUOTED_CODE_POINTS_MAX characters with an ellipsis. Cuts fall between
 * code points, never inside a surrogate pair.
 */
function quote(text: string): string {
  let quoted = '"';
  let codePoints = 0;
  for (let index = 0; index < text.length; index++) {
    if (codePoints === QUOTED_CODE_POINTS_MAX) return `${quoted}…"`;
    codePoints++;
    const unit = text.charCodeAt(index);
    if (isLeadSurrogate(unit) && index + 1 < text.length && isTrailSurrogate(text.charCodeAt(index + 1))) {
      quoted += text.slice(index, index + 2);
      index++;
    } else if (isControl(unit) || isLeadSurrogate(unit) || isTrailSurrogate(unit) || unit === 0xfffe || unit === 0xffff) {
      quoted += `\\u${unit.toString(16).padStart(4, '0')}`;
    } else if (unit === 0x22 || unit === 0x5c) {
      quoted += `\\${text[index]}`;
    } else {
      quoted += text[index];
    }
  }
  return `${quoted}"`;
}
