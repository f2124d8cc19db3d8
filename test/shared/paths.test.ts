/**
 * The path rules of shared/paths.ts, pinned through its exports: tables of valid and invalid
 * paths with their exact messages, the edges of every helper, and fast-check properties that
 * hold the checker to an independent statement of the rules and the order to the
 * contiguous-subtree property. fast-check prints the seed and path of any failing case; pass
 * them back (`fc.assert(..., { seed, path })`) to replay it.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../shared/errors.js';
import {
  PATH_BYTES_MAX,
  ROOT,
  SEQUENCE_COUNTER_MAX,
  SEQUENCE_DIGITS,
  baseName,
  checkPath,
  checkSequentialPath,
  comparePaths,
  depthOf,
  isAncestorOf,
  isValidPath,
  joinPath,
  parentOf,
  segmentsOf,
  sequentialPath,
  type PathCheck,
} from '../../shared/paths.js';

const utf8 = new TextEncoder();

/** The error of a check that must have failed with INVALID_ARGUMENT. */
function errorOf(check: PathCheck): WardenError {
  if (check.ok) throw new Error(`expected INVALID_ARGUMENT, got the valid path ${JSON.stringify(check.path)}`);
  expect(check.error).toBeInstanceOf(WardenError);
  expect(check.error.code).toBe('INVALID_ARGUMENT');
  return check.error;
}

/** The rules restated independently of the implementation: a regular expression plus the byte bound. */
const SEGMENT = String.raw`(?!\.\.?(?:/|$))[^/\p{Cc}\p{Cs}\uFFFE\uFFFF]+`;
const PATH_SHAPE = new RegExp(String.raw`^(?:/|(?:/${SEGMENT})+)$`, 'u');
const REFUSED_CHARACTER = /[/\p{Cc}\p{Cs}\uFFFE\uFFFF]/u;
function validByTheRules(value: unknown): boolean {
  return typeof value === 'string' && utf8.encode(value).length <= PATH_BYTES_MAX && PATH_SHAPE.test(value);
}

/** Segment-by-segment order, segments by code point: the order comparePaths promises, written plainly. */
function compareBySegments(a: string, b: string): number {
  const segmentsA = a === '/' ? [] : a.slice(1).split('/');
  const segmentsB = b === '/' ? [] : b.slice(1).split('/');
  for (let index = 0; index < Math.min(segmentsA.length, segmentsB.length); index++) {
    const pointsA = Array.from(segmentsA[index]!, (character) => character.codePointAt(0)!);
    const pointsB = Array.from(segmentsB[index]!, (character) => character.codePointAt(0)!);
    for (let at = 0; at < Math.min(pointsA.length, pointsB.length); at++) {
      if (pointsA[at] !== pointsB[at]) return pointsA[at]! - pointsB[at]!;
    }
    if (pointsA.length !== pointsB.length) return pointsA.length - pointsB.length;
  }
  return segmentsA.length - segmentsB.length;
}

/** A path as a bytewise-ordered store (RocksDB) would key it: UTF-8, each "/" as the byte 0x00. */
function storageKey(path: string): Uint8Array {
  return utf8.encode(path.replaceAll('/', '\u0000'));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let index = 0; index < Math.min(a.length, b.length); index++) {
    if (a[index] !== b[index]) return a[index]! - b[index]!;
  }
  return a.length - b.length;
}

// ---- generators ----------------------------------------------------------------------------

/** Characters that sit on the edges of the rules, plus any UTF-16 code unit (lone surrogates too). */
const edgeCharacter = fc.constantFrom(
  '/', '/', '.', 'a', 'é', '😀', '\u0000', '\u001f', '\u007f', '\u009f', '\u00a0', '\u0020',
  '\ud83d', '\ude00', '\ufffe', '\uffff', '\ufffd', '\ufdd0', '"', '\\',
);
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));
const anyText = fc.string({
  unit: fc.oneof(edgeCharacter, anyCodeUnit, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 16,
});
const pathLikeText = fc.oneof(anyText, anyText.map((text) => `/${text}`));

const segmentCharacter = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'b', '-', '.', ' ', '~', 'é', '😀', '\uff5e', '\u{10ffff}', '\ufdd0') },
  {
    weight: 1,
    arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => !REFUSED_CHARACTER.test(c)),
  },
);
const segment = fc.string({ unit: segmentCharacter, minLength: 1, maxLength: 4 }).filter((s) => s !== '.' && s !== '..');
const validPath = fc.array(segment, { maxLength: 5 }).map((segments) => ({
  segments,
  path: segments.length === 0 ? '/' : `/${segments.join('/')}`,
}));

/** Paths over a few names that share prefixes, so ancestors, siblings and near-misses meet often. */
const nearName = fc.constantFrom('a', 'b', 'ab', 'a-b', 'a b', 'a.', '\uff5e', '😀', 'é');
const nearPath = fc.array(nearName, { maxLength: 4 }).map((segments) => (segments.length === 0 ? '/' : `/${segments.join('/')}`));

// ---- checkPath ------------------------------------------------------------------------------

describe('checkPath accepts', () => {
  it.each([
    ['the root', '/'],
    ['one segment', '/a'],
    ['a deep path', '/app/config/db/primary/host'],
    ['dots that are not "." or ".."', '/.a/a./.../a/..b'],
    ['spaces and punctuation', '/ a /-/~/a b/!@#$%^&*()"\\'],
    ['non-ASCII letters', '/é/日本語/设置'],
    ['decomposed accents as given', '/e\u0301'],
    ['an emoji (a surrogate pair)', '/😀'],
    ['emoji between segments', '/a/👩‍👩‍👧/b'],
    ['U+00A0, the first character after the C1 controls', '/\u00a0'],
    ['U+FFFD and U+FDD0', '/\ufffd\ufdd0'],
    ['the last code point, U+10FFFF', '/\u{10ffff}'],
  ])('%s: %j', (_, path) => {
    expect(checkPath(path)).toEqual({ ok: true, path });
    expect(isValidPath(path)).toBe(true);
  });
});

describe('checkPath refuses, naming the problem and where', () => {
  it.each([
    ['the empty string', '', 'path must start with "/", got ""'],
    ['a relative path', 'a/b', 'path must start with "/", got "a/b"'],
    ['a leading space', ' /a', 'path must start with "/", got " /a"'],
    ['"//"', '//', 'path "//" has an empty segment at position 1'],
    ['an empty segment in the middle', '/a//b', 'path "/a//b" has an empty segment at position 3'],
    ['an empty first segment', '//a', 'path "//a" has an empty segment at position 1'],
    ['a trailing "/"', '/a/', 'path "/a/" has a trailing "/" at position 2; only the root "/" may end with "/"'],
    ['a trailing "/" on a deep path', '/a/b/', 'path "/a/b/" has a trailing "/" at position 4; only the root "/" may end with "/"'],
    ['a "." segment', '/.', 'path "/." has a "." segment at position 1, which is not allowed'],
    ['a ".." segment', '/..', 'path "/.." has a ".." segment at position 1, which is not allowed'],
    ['a ".." in the middle', '/a/../b', 'path "/a/../b" has a ".." segment at position 3, which is not allowed'],
    ['a "." at the end', '/a/.', 'path "/a/." has a "." segment at position 3, which is not allowed'],
    ['NUL', '/a\u0000b', 'path "/a\\u0000b" has the control character U+0000 at position 2'],
    ['a newline', '/a\nb', 'path "/a\\u000ab" has the control character U+000A at position 2'],
    ['U+001F', '/\u001f', 'path "/\\u001f" has the control character U+001F at position 1'],
    ['DEL, U+007F', '/x\u007f', 'path "/x\\u007f" has the control character U+007F at position 2'],
    ['a C1 control, U+0085', '/\u0085', 'path "/\\u0085" has the control character U+0085 at position 1'],
    ['U+009F', '/\u009f', 'path "/\\u009f" has the control character U+009F at position 1'],
    ['a lone lead surrogate', '/a\ud800', 'path "/a\\ud800" has an unpaired surrogate U+D800 at position 2'],
    ['a lone trail surrogate', '/\udc00a', 'path "/\\udc00a" has an unpaired surrogate U+DC00 at position 1'],
    ['a pair in the wrong order', '/\ude00\ud83d', 'path "/\\ude00\\ud83d" has an unpaired surrogate U+DE00 at position 1'],
    ['a lead surrogate before "/"', '/\ud83d/a', 'path "/\\ud83d/a" has an unpaired surrogate U+D83D at position 1'],
    ['the noncharacter U+FFFE', '/\ufffe', 'path "/\\ufffe" has the noncharacter U+FFFE at position 1'],
    ['the noncharacter U+FFFF', '/a/x\uffff', 'path "/a/x\\uffff" has the noncharacter U+FFFF at position 4'],
    ['the leftmost problem first (control before "//")', '/a\u0000//', 'path "/a\\u0000//" has the control character U+0000 at position 2'],
    ['the leftmost problem first ("//" before control)', '/a//\u0000', 'path "/a//\\u0000" has an empty segment at position 3'],
    ['the leftmost problem first (".." before "/")', '/../', 'path "/../" has a ".." segment at position 1, which is not allowed'],
    ['quotes and backslashes escaped in the message', '/a"\\/', 'path "/a\\"\\\\/" has a trailing "/" at position 4; only the root "/" may end with "/"'],
  ])('%s: %j', (_, path, message) => {
    expect(errorOf(checkPath(path)).message).toBe(message);
    expect(isValidPath(path)).toBe(false);
  });
});

describe('checkPath on values that are not strings', () => {
  const revoked = Proxy.revocable([], {});
  revoked.revoke();
  it.each([
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
    ['a number', 42, 'number'],
    ['NaN', Number.NaN, 'number'],
    ['a boolean', true, 'boolean'],
    ['a bigint', 1n, 'bigint'],
    ['a symbol', Symbol('/a'), 'symbol'],
    ['a function', () => '/a', 'function'],
    ['an object', { path: '/a' }, 'object'],
    ['a String object', new String('/a'), 'object'],
    ['an empty array', [], 'array'],
    ['an array of a path', ['/a'], 'array'],
    ['a revoked proxy, on which Array.isArray throws', revoked.proxy, 'object'],
  ])('returns INVALID_ARGUMENT for %s and does not throw', (_, value, kind) => {
    expect(errorOf(checkPath(value)).message).toBe(`path must be a string, got ${kind}`);
    expect(isValidPath(value)).toBe(false);
  });
});

describe('the byte limit', () => {
  it('is 4,096 bytes of UTF-8', () => {
    expect(PATH_BYTES_MAX).toBe(4096);
  });

  it('accepts a path of exactly 4,096 ASCII bytes and refuses 4,097', () => {
    const atLimit = `/${'a'.repeat(4095)}`;
    expect(checkPath(atLimit)).toEqual({ ok: true, path: atLimit });
    expect(errorOf(checkPath(`${atLimit}a`)).message).toMatch(/ is 4097 bytes; the limit is 4096$/);
  });

  it('counts UTF-8 bytes, not characters: a 3-byte "€" crossing the limit', () => {
    const atLimit = `/${'a'.repeat(4092)}€`; // 1 + 4092 + 3 = 4096 bytes in 4094 code units
    expect(isValidPath(atLimit)).toBe(true);
    const over = `/${'a'.repeat(4093)}€`; // 4097 bytes in only 4095 code units
    expect(over.length).toBeLessThan(PATH_BYTES_MAX);
    expect(errorOf(checkPath(over)).message).toMatch(/ is 4097 bytes; the limit is 4096$/);
  });

  it('counts a 4-byte emoji as 4 bytes', () => {
    const atLimit = `/${'😀'.repeat(1023)}abc`; // 1 + 4092 + 3
    expect(isValidPath(atLimit)).toBe(true);
    expect(errorOf(checkPath(`${atLimit}d`)).message).toMatch(/ is 4097 bytes; the limit is 4096$/);
  });

  it('accepts 512 segments that fill the limit exactly', () => {
    const deep = '/abcdefg'.repeat(512);
    expect(utf8.encode(deep).length).toBe(4096);
    expect(isValidPath(deep)).toBe(true);
    expect(depthOf(deep)).toBe(512);
  });

  it('is checked before the characters, so an oversized path reports its size', () => {
    expect(errorOf(checkPath(`/${'a'.repeat(5000)}//`)).message).toMatch(/ is 5003 bytes; the limit is 4096$/);
  });
});

describe('error messages quote the path safely', () => {
  it('cut a long path after 80 characters with an ellipsis', () => {
    const message = errorOf(checkPath(`/${'a'.repeat(4999)}`)).message;
    expect(message).toBe(`path "/${'a'.repeat(79)}…" is 5000 bytes; the limit is 4096`);
  });

  it('quote a path of exactly 80 characters whole, and cut one of 81', () => {
    const eighty = `/${'a'.repeat(78)}/`;
    expect(errorOf(checkPath(eighty)).message).toContain(`"${eighty}" has a trailing "/"`);
    const eightyOne = `/${'a'.repeat(79)}/`;
    expect(errorOf(checkPath(eightyOne)).message).toContain(`"/${'a'.repeat(79)}…" has a trailing "/" at position 80`);
  });

  it('cut between characters, never inside a surrogate pair', () => {
    const message = errorOf(checkPath(`/${'😀'.repeat(2000)}`)).message;
    expect(message).toBe(`path "/${'😀'.repeat(79)}…" is 8001 bytes; the limit is 4096`);
    expect(message).not.toMatch(/\p{Cs}/u);
  });

  it('never carry a raw control character, lone surrogate or noncharacter', () => {
    fc.assert(
      fc.property(pathLikeText, (text) => {
        const check = checkPath(text);
        if (!check.ok) expect(check.error.message).not.toMatch(/[\p{Cc}\p{Cs}\uFFFE\uFFFF]/u);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---- helpers --------------------------------------------------------------------------------

describe('the helpers', () => {
  it('name the root', () => {
    expect(ROOT).toBe('/');
  });

  it.each([
    ['/', null],
    ['/a', '/'],
    ['/a/b', '/a'],
    ['/a/b/c', '/a/b'],
    ['/😀/é', '/😀'],
  ])('parentOf(%j) is %j', (path, parent) => {
    expect(parentOf(path)).toBe(parent);
  });

  it.each([
    ['/', ''],
    ['/a', 'a'],
    ['/a/b', 'b'],
    ['/a/😀', '😀'],
    ['/a/.b', '.b'],
  ])('baseName(%j) is %j', (path, name) => {
    expect(baseName(path)).toBe(name);
  });

  it.each([
    ['/', 'a', '/a'],
    ['/a', 'b', '/a/b'],
    ['/a/b', '😀', '/a/b/😀'],
  ])('joinPath(%j, %j) is %j', (parent, name, path) => {
    expect(joinPath(parent, name)).toBe(path);
  });

  it.each([
    ['/', []],
    ['/a', ['a']],
    ['/a/b/c', ['a', 'b', 'c']],
    ['/.x/..y/😀', ['.x', '..y', '😀']],
  ])('segmentsOf(%j) is %j', (path, segments) => {
    expect(segmentsOf(path)).toEqual(segments);
  });

  it.each([
    ['/', 0],
    ['/a', 1],
    ['/a/b/c', 3],
    ['/😀/é', 2],
  ])('depthOf(%j) is %j', (path, depth) => {
    expect(depthOf(path)).toBe(depth);
  });

  it.each([
    ['/', '/', false],
    ['/', '/a', true],
    ['/', '/a/b/c', true],
    ['/a', '/a', false],
    ['/a', '/a/b', true],
    ['/a', '/a/b/c', true],
    ['/a', '/ab', false],
    ['/a', '/a-b', false],
    ['/a/b', '/a', false],
    ['/a/b', '/a/bc/d', false],
    ['/a', '/', false],
    ['/😀', '/😀/x', true],
  ])('isAncestorOf(%j, %j) is %j', (ancestor, path, expected) => {
    expect(isAncestorOf(ancestor, path)).toBe(expected);
  });
});

describe('comparePaths', () => {
  it('puts a path, then its whole subtree, then its next sibling', () => {
    const paths = ['/a-b', '/a/b/c', '/b', '/a', '/ab', '/', '/a b', '/a/b'];
    expect([...paths].sort(comparePaths)).toEqual(['/', '/a', '/a/b', '/a/b/c', '/a b', '/a-b', '/ab', '/b']);
  });

  it('differs from plain string order, which would put "/a-b" inside the subtree of "/a"', () => {
    expect(['/a/b', '/a-b', '/a', '/a/b/c'].sort()).toEqual(['/a', '/a-b', '/a/b', '/a/b/c']);
    expect(['/a/b', '/a-b', '/a', '/a/b/c'].sort(comparePaths)).toEqual(['/a', '/a/b', '/a/b/c', '/a-b']);
  });

  it('orders names by code point, so U+FF5E sorts before an emoji (UTF-16 code unit order says the opposite)', () => {
    expect('/\uff5e' < '/😀').toBe(false);
    expect(comparePaths('/\uff5e', '/😀')).toBeLessThan(0);
    expect(comparePaths('/😀', '/\uff5e')).toBeGreaterThan(0);
    expect(comparePaths('/\ud7ff', '/😀')).toBeLessThan(0);
  });

  it('answers 0 only for equal paths', () => {
    expect(comparePaths('/a/b', '/a/b')).toBe(0);
    expect(comparePaths('/', '/')).toBe(0);
    expect(comparePaths('/a', '/a/')).not.toBe(0);
  });
});

describe('sequential paths', () => {
  it('use ten digits, up to 9,999,999,999', () => {
    expect(SEQUENCE_DIGITS).toBe(10);
    expect(SEQUENCE_COUNTER_MAX).toBe(9_999_999_999);
  });

  it.each([
    ['/q/job-', 7, '/q/job-0000000007'],
    ['/q/', 7, '/q/0000000007'],
    ['/', 0, '/0000000000'],
    ['/q', 42, '/q0000000042'],
    ['/q/job-', 1_234_567_890, '/q/job-1234567890'],
    ['/q/job-', 9_999_999_999, '/q/job-9999999999'],
    ['/q/😀', 1, '/q/😀0000000001'],
  ])('%j + %j is %j, and checkSequentialPath agrees', (base, counter, path) => {
    expect(sequentialPath(base, counter)).toBe(path);
    expect(checkSequentialPath(base, counter)).toEqual({ ok: true, path });
  });

  it('accept a base up to 4,086 bytes, whose result is exactly 4,096', () => {
    const base = `/${'a'.repeat(4085)}`;
    const check = checkSequentialPath(base, 3);
    expect(check).toEqual({ ok: true, path: `${base}0000000003` });
    expect(utf8.encode(sequentialPath(base, 3)).length).toBe(PATH_BYTES_MAX);
  });

  it.each([
    ['a counter past ten digits', '/q/job-', 10_000_000_000, 'sequence counter 10000000000 is out of range; it must be an integer from 0 to 9999999999 (10 digits)'],
    ['a negative counter', '/q/job-', -1, 'sequence counter -1 is out of range; it must be an integer from 0 to 9999999999 (10 digits)'],
    ['a fractional counter', '/q/job-', 1.5, 'sequence counter 1.5 is out of range; it must be an integer from 0 to 9999999999 (10 digits)'],
    ['NaN', '/q/job-', Number.NaN, 'sequence counter NaN is out of range; it must be an integer from 0 to 9999999999 (10 digits)'],
    ['Infinity', '/q/job-', Number.POSITIVE_INFINITY, 'sequence counter Infinity is out of range; it must be an integer from 0 to 9999999999 (10 digits)'],
    ['a counter given as a string', '/q/job-', '7', 'sequence counter must be a number, got string'],
    ['no counter', '/q/job-', undefined, 'sequence counter must be a number, got undefined'],
    ['a base that is not a string', 42, 7, 'sequential base path must be a string, got number'],
    ['an empty base', '', 7, 'sequential base path "" gives an invalid path: path must start with "/", got "0000000007"'],
    ['a relative base', 'q/', 7, 'sequential base path "q/" gives an invalid path: path must start with "/", got "q/0000000007"'],
    ['a base with "//"', '/q//', 7, 'sequential base path "/q//" gives an invalid path: path "/q//0000000007" has an empty segment at position 3'],
    ['a base with ".."', '/q/../', 7, 'sequential base path "/q/../" gives an invalid path: path "/q/../0000000007" has a ".." segment at position 3, which is not allowed'],
    ['a base ending in half an emoji', '/q/\ud83d', 7, 'sequential base path "/q/\\ud83d" gives an invalid path: path "/q/\\ud83d0000000007" has an unpaired surrogate U+D83D at position 3'],
    ['a base with a control character', '/q\u0007/', 7, 'sequential base path "/q\\u0007/" gives an invalid path: path "/q\\u0007/0000000007" has the control character U+0007 at position 2'],
  ])('refuse %s', (_, base, counter, message) => {
    expect(errorOf(checkSequentialPath(base, counter)).message).toBe(message);
  });

  it('refuse a valid base whose result passes the byte limit', () => {
    const base = `/${'a'.repeat(4086)}`;
    expect(isValidPath(base)).toBe(true);
    expect(errorOf(checkSequentialPath(base, 3)).message).toMatch(
      /^sequential base path "\/a{79}…" gives an invalid path: path "\/a{79}…" is 4097 bytes; the limit is 4096$/,
    );
  });

  it('never throw, whatever the base and counter', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), pathLikeText), fc.oneof(fc.anything(), fc.double(), fc.integer()), (base, counter) => {
        const check = checkSequentialPath(base, counter);
        if (check.ok) expect(isValidPath(check.path)).toBe(true);
        else expect(check.error.code).toBe('INVALID_ARGUMENT');
      }),
      { numRuns: 1000 },
    );
  });
});

// ---- properties -----------------------------------------------------------------------------

describe('properties', () => {
  it('checkPath never throws and always answers a path or an INVALID_ARGUMENT, for any value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), pathLikeText), (value) => {
        const check = checkPath(value);
        if (check.ok) {
          expect(check.path).toBe(value);
        } else {
          expect(check.error).toBeInstanceOf(WardenError);
          expect(check.error.code).toBe('INVALID_ARGUMENT');
          expect(check.error.message).toMatch(/^path /);
        }
        expect(isValidPath(value)).toBe(check.ok);
      }),
      { numRuns: 2000 },
    );
  });

  it('checkPath agrees with the rules written as a regular expression and a byte count', () => {
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(fc.oneof(pathLikeText, validPath.map(({ path }) => path)), (text) => {
        const expected = validByTheRules(text);
        if (expected) valid++;
        else invalid++;
        expect(checkPath(text).ok).toBe(expected);
      }),
      { numRuns: 3000 },
    );
    // Both answers must have been exercised, or the agreement says nothing.
    expect(valid).toBeGreaterThan(100);
    expect(invalid).toBeGreaterThan(100);
  });

  it('generated valid paths are valid and the helpers take them apart and put them back', () => {
    fc.assert(
      fc.property(validPath, ({ segments, path }) => {
        expect(checkPath(path)).toEqual({ ok: true, path });
        expect(segmentsOf(path)).toEqual(segments);
        expect(depthOf(path)).toBe(segments.length);
        if (segments.length === 0) {
          expect(path).toBe(ROOT);
          expect(parentOf(path)).toBeNull();
          expect(baseName(path)).toBe('');
          return;
        }
        const parent = parentOf(path)!;
        expect(isValidPath(parent)).toBe(true);
        expect(baseName(path)).toBe(segments.at(-1));
        expect(joinPath(parent, baseName(path))).toBe(path);
        expect(segments.reduce(joinPath, ROOT)).toBe(path);
        expect(depthOf(parent)).toBe(segments.length - 1);
        expect(isAncestorOf(parent, path)).toBe(true);
        expect(isAncestorOf(ROOT, path)).toBe(true);
        expect(isAncestorOf(path, parent)).toBe(false);
        expect(isAncestorOf(path, path)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('isAncestorOf holds exactly when the segments of one are a proper prefix of the other', () => {
    fc.assert(
      fc.property(nearPath, nearPath, (a, b) => {
        const segmentsA = segmentsOf(a);
        const segmentsB = segmentsOf(b);
        const properPrefix = segmentsA.length < segmentsB.length && segmentsA.every((name, index) => segmentsB[index] === name);
        expect(isAncestorOf(a, b)).toBe(properPrefix);
      }),
      { numRuns: 2000 },
    );
  });

  it('comparePaths is a total order, on paths and on any strings', () => {
    const text = fc.oneof(nearPath, validPath.map(({ path }) => path), anyText);
    fc.assert(
      fc.property(text, text, text, (a, b, c) => {
        expect(Math.sign(comparePaths(a, b))).toBe(-Math.sign(comparePaths(b, a)) || 0);
        expect(comparePaths(a, b) === 0).toBe(a === b);
        if (comparePaths(a, b) <= 0 && comparePaths(b, c) <= 0) expect(comparePaths(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('comparePaths orders segment by segment, names by code point', () => {
    fc.assert(
      fc.property(fc.oneof(nearPath, validPath.map(({ path }) => path)), fc.oneof(nearPath, validPath.map(({ path }) => path)), (a, b) => {
        expect(Math.sign(comparePaths(a, b))).toBe(Math.sign(compareBySegments(a, b)));
      }),
      { numRuns: 3000 },
    );
  });

  it('comparePaths matches a bytewise store keyed by UTF-8 with "/" as 0x00', () => {
    fc.assert(
      fc.property(fc.oneof(nearPath, validPath.map(({ path }) => path)), fc.oneof(nearPath, validPath.map(({ path }) => path)), (a, b) => {
        expect(Math.sign(comparePaths(a, b))).toBe(Math.sign(compareBytes(storageKey(a), storageKey(b))));
      }),
      { numRuns: 3000 },
    );
  });

  it('after sorting, every path is followed directly by all its descendants and nothing else', () => {
    fc.assert(
      fc.property(fc.array(nearPath, { minLength: 1, maxLength: 40 }), (paths) => {
        const sorted = [...new Set(paths)].sort(comparePaths);
        sorted.forEach((path, index) => {
          const descendants = sorted.filter((other) => isAncestorOf(path, other)).length;
          for (let offset = 1; offset <= descendants; offset++) {
            expect(isAncestorOf(path, sorted[index + offset]!)).toBe(true);
          }
          const parent = parentOf(path);
          if (parent !== null && sorted.includes(parent)) expect(sorted.indexOf(parent)).toBeLessThan(index);
        });
      }),
      { numRuns: 1000 },
    );
  });
});
