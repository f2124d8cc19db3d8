/**
 * The door check: finds imports that cross walls the architecture keeps shut.
 *
 * - server/raft imports only itself and shared/ (relative paths only: no packages, no `node:`),
 * - server/state imports only itself, shared/ and packages (no `node:`), and like raft uses no
 *   clock, timers or randomness,
 *   and its code never reaches for a clock, a timer, randomness or the process.
 * - shared/ imports neither server/ nor client/ and no Node builtin (it must run in a browser);
 *   packages such as ajv are allowed.
 * - client/ never imports server/.
 *
 * Pattern: a small lexer blanks out comments (keeping strings and line numbers), then patterns
 * pick every static import, `import type`, side-effect import, `export ... from`, dynamic
 * `import(...)` and `require(...)` specifier; relative specifiers are resolved against the file
 * and judged by the room they land in.
 *
 * Must never: pass a file it could not judge (a computed `import(expr)` or an unresolvable
 * `#subpath` counts as a violation); report imports or purity tokens that sit in comments.
 */

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DoorViolation {
  /** Path relative to the checked root, with forward slashes. */
  readonly file: string;
  readonly line: number;
  readonly rule: string;
  readonly detail: string;
}

export interface ImportReference {
  /** The module specifier, or null for a dynamic import whose argument is not a string literal. */
  readonly specifier: string | null;
  readonly line: number;
}

const SOURCE_EXTENSIONS = ['.ts', '.mts', '.cts', '.tsx'];

/** Reads of the outside world that would make the consensus core non-deterministic. */
const RAFT_IMPURITIES: readonly { readonly token: string; readonly pattern: RegExp }[] = [
  { token: 'Date.now', pattern: /\bDate\s*\.\s*now\b/g },
  { token: 'new Date', pattern: /\bnew\s+Date\b/g },
  { token: 'Math.random', pattern: /\bMath\s*\.\s*random\b/g },
  { token: 'setTimeout', pattern: /\bsetTimeout\b/g },
  { token: 'setInterval', pattern: /\bsetInterval\b/g },
  { token: 'setImmediate', pattern: /\bsetImmediate\b/g },
  { token: 'performance.now', pattern: /\bperformance\s*\.\s*now\b/g },
  { token: 'process.', pattern: /(?<![\w$])process\s*\./g },
];

const NODE_BUILTINS = new Set(builtinModules);

/** All door and purity violations under rootDir; an empty or missing room yields none. */
export function findImportViolations(rootDir: string): DoorViolation[] {
  const root = resolve(rootDir);
  const selfPackage = readPackageName(root);
  const violations: DoorViolation[] = [];
  for (const room of ['server/raft', 'server/state', 'shared', 'client'] as const) {
    for (const file of listSourceFiles(join(root, room))) {
      const source = readFileSync(file, 'utf8');
      const code = blankComments(source);
      const bareCode = blankCommentsAndStrings(source);
      const fileName = toPosix(relative(root, file));
      const report = (line: number, rule: string, detail: string): void => {
        violations.push({ file: fileName, line, rule, detail });
      };
      for (const reference of extractImports(code)) {
        judgeImport(room, root, file, reference, selfPackage, report);
      }
      // The consensus core and the state machine are deterministic: a seed or a log replays them.
      if (room === 'server/raft' || room === 'server/state') {
        const rule = room === 'server/raft' ? 'raft-purity' : 'state-purity';
        for (const { token, pattern } of RAFT_IMPURITIES) {
          for (const match of bareCode.matchAll(pattern)) {
            report(lineAt(bareCode, match.index), rule, `uses ${token}; time, timers and randomness must be injected`);
          }
        }
      }
    }
  }
  return violations.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
}

/** Every TypeScript source file under dir, depth first, in a stable order. */
export function listSourceFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  const files: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') files.push(...listSourceFiles(path));
    } else if (entry.isFile() && SOURCE_EXTENSIONS.some((extension) => entry.name.endsWith(extension))) {
      files.push(path);
    }
  }
  return files;
}

type Room = 'server/raft' | 'server/state' | 'shared' | 'client';
type Report = (line: number, rule: string, detail: string) => void;

function judgeImport(
  room: Room,
  root: string,
  file: string,
  { specifier, line }: ImportReference,
  selfPackage: string | null,
  report: Report,
): void {
  if (specifier === null) {
    report(line, ruleName(room), 'dynamic import of a computed specifier; the door check cannot follow it');
    return;
  }
  const target = resolveRelative(file, specifier);
  if (target !== null) {
    const landsIn = toPosix(relative(root, target));
    const inside = (folder: string): boolean => landsIn === folder || landsIn.startsWith(`${folder}/`);
    if (room === 'server/raft' && !inside('server/raft') && !inside('shared')) {
      report(line, 'raft-imports', `imports ${specifier} (${landsIn}); raft may import only server/raft and shared/`);
    }
    if (room === 'server/state' && !inside('server/state') && !inside('shared')) {
      report(line, 'state-imports', `imports ${specifier} (${landsIn}); the state machine may import only server/state and shared/`);
    }
    if (room === 'shared' && (inside('server') || inside('client'))) {
      report(line, 'shared-imports', `imports ${specifier} (${landsIn}); shared/ must not import server/ or client/`);
    }
    if (room === 'client' && inside('server')) {
      report(line, 'client-imports', `imports ${specifier} (${landsIn}); client/ must not import server/`);
    }
    return;
  }

  const builtin = specifier.startsWith('node:') || NODE_BUILTINS.has(specifier) || NODE_BUILTINS.has(specifier.split('/')[0]!);
  if (room === 'server/raft') {
    const what = builtin ? 'the Node builtin' : 'the package';
    report(line, 'raft-imports', `imports ${what} ${specifier}; raft is pure and imports only server/raft and shared/`);
    return;
  }
  if (specifier.startsWith('#')) {
    report(line, ruleName(room), `imports the subpath alias ${specifier}; the door check cannot follow it, use a relative path`);
    return;
  }
  if (room === 'server/state' && builtin) {
    report(line, 'state-imports', `imports the Node builtin ${specifier}; the state machine does no I/O (packages are fine)`);
    return;
  }
  if (room === 'shared' && builtin) {
    report(line, 'shared-imports', `imports the Node builtin ${specifier}; shared/ must stay runnable in a browser`);
    return;
  }
  // The package importing itself by name: 'warden/server' is the server, 'warden' the client.
  if (selfPackage !== null && (specifier === selfPackage || specifier.startsWith(`${selfPackage}/`))) {
    const subpath = specifier.slice(selfPackage.length);
    const reachesServer = subpath === '/server' || subpath.startsWith('/server/');
    if (room === 'shared') {
      report(line, 'shared-imports', `imports ${specifier}, the package itself; shared/ must not import server/ or client/`);
    } else if (room === 'client' && reachesServer) {
      report(line, 'client-imports', `imports ${specifier}; client/ must not import server/`);
    }
  }
}

function ruleName(room: Room): string {
  if (room === 'server/raft') return 'raft-imports';
  if (room === 'server/state') return 'state-imports';
  return `${room}-imports`;
}

/** The absolute path a path-like specifier points at, or null for packages and builtins. */
function resolveRelative(file: string, specifier: string): string | null {
  if (specifier.startsWith('file:')) return fileURLToPath(specifier);
  if (specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../')) {
    return resolve(dirname(file), specifier);
  }
  if (isAbsolute(specifier)) return specifier;
  return null;
}

function readPackageName(root: string): string | null {
  const manifest = join(root, 'package.json');
  if (!existsSync(manifest)) return null;
  const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
  if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && typeof parsed.name === 'string') {
    return parsed.name;
  }
  return null;
}

const IMPORT_PATTERNS: readonly RegExp[] = [
  // import x from '...', import { a } from '...', import * as x from '...', import type { T } from '...'
  /(?<![\w$.])import\s+(?![\s(])[^'"`;]*?\bfrom\s*(['"])([^'"\n]*)\1/g,
  // import '...'
  /(?<![\w$.])import\s*(['"])([^'"\n]*)\1/g,
  // export * from '...', export * as ns from '...', export { a } from '...', export type { T } from '...'
  /(?<![\w$.])export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(['"])([^'"\n]*)\1/g,
  // require('...') and import x = require('...')
  /(?<![\w$.])require\s*\(\s*(['"])([^'"\n]*)\1\s*\)/g,
];

/** Specifiers of every import-like form in comment-free source, with their line numbers. */
export function extractImports(code: string): ImportReference[] {
  const references: ImportReference[] = [];
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of code.matchAll(pattern)) {
      references.push({ specifier: match[2]!, line: lineAt(code, match.index) });
    }
  }
  // import('...'), also `typeof import('...')` in types; anything but a plain literal is unjudgeable.
  for (const match of code.matchAll(/(?<![\w$.])import\s*\(/g)) {
    const rest = code.slice(match.index + match[0].length);
    const literal = /^\s*(['"`])([^'"`\n]*)\1\s*[,)]/.exec(rest);
    const templateHole = literal !== null && literal[1] === '`' && literal[2]!.includes('${');
    references.push({
      specifier: literal === null || templateHole ? null : literal[2]!,
      line: lineAt(code, match.index),
    });
  }
  return references.sort((a, b) => a.line - b.line);
}

/**
 * The source with every comment replaced by spaces (newlines kept, so line numbers hold).
 * Strings, template literals and regular-expression literals are skipped over so that a `//`
 * or quote inside them is not taken for a comment.
 */
export function blankComments(source: string): string {
  return blank(source, false);
}

/** As blankComments, and the text inside string and template literals blanked too. */
export function blankCommentsAndStrings(source: string): string {
  return blank(source, true);
}

function blank(source: string, blankLiterals: boolean): string {
  const out = source.split('');
  const erase = (from: number, to: number): void => {
    for (let i = from; i < to && i < out.length; i++) if (out[i] !== '\n' && out[i] !== '\r') out[i] = ' ';
  };
  // Brace depths at which an open template literal resumes after a `${ ... }` hole.
  const templateResume: number[] = [];
  let braceDepth = 0;
  let lastSignificant = '';
  let i = 0;
  const skipQuoted = (quote: string): void => {
    i++;
    const contentStart = i;
    while (i < source.length && source[i] !== quote && source[i] !== '\n') i += source[i] === '\\' ? 2 : 1;
    if (blankLiterals) erase(contentStart, i);
    i++;
  };
  const skipTemplate = (): void => {
    // i is just past a backtick or a closing hole brace.
    const textStart = i;
    while (i < source.length) {
      const ch = source[i];
      if (ch === '\\') i += 2;
      else if (ch === '`') {
        if (blankLiterals) erase(textStart, i);
        i++;
        return;
      } else if (ch === '$' && source[i + 1] === '{') {
        if (blankLiterals) erase(textStart, i);
        i += 2;
        templateResume.push(braceDepth);
        braceDepth++;
        return;
      } else i++;
    }
    if (blankLiterals) erase(textStart, i);
  };
  while (i < source.length) {
    const ch = source[i]!;
    const following = source[i + 1];
    if (ch === '/' && following === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? source.length : end;
      erase(i, stop);
      i = stop;
      continue;
    }
    if (ch === '/' && following === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? source.length : end + 2;
      erase(i, stop);
      i = stop;
      continue;
    }
    if (ch === '"' || ch === "'") {
      skipQuoted(ch);
      lastSignificant = 'x';
      continue;
    }
    if (ch === '`') {
      i++;
      skipTemplate();
      lastSignificant = 'x';
      continue;
    }
    if (ch === '/' && startsRegex(lastSignificant, source, i)) {
      i++;
      let inClass = false;
      while (i < source.length && source[i] !== '\n') {
        const c = source[i];
        if (c === '\\') i += 2;
        else {
          if (c === '[') inClass = true;
          else if (c === ']') inClass = false;
          else if (c === '/' && !inClass) break;
          i++;
        }
      }
      i++;
      lastSignificant = 'x';
      continue;
    }
    if (ch === '{') braceDepth++;
    if (ch === '}') {
      braceDepth--;
      if (templateResume.length > 0 && templateResume[templateResume.length - 1] === braceDepth) {
        templateResume.pop();
        i++;
        skipTemplate();
        lastSignificant = 'x';
        continue;
      }
    }
    if (!/\s/.test(ch)) lastSignificant = ch;
    i++;
  }
  return out.join('');
}

/** A slash starts a regular expression unless it follows something that ends an operand. */
function startsRegex(lastSignificant: string, source: string, slashAt: number): boolean {
  if (lastSignificant === '') return true;
  if (/[)\]}]/.test(lastSignificant)) return false;
  if (/[\w$]/.test(lastSignificant)) {
    // After an identifier it is division, unless that identifier is a keyword such as `return`.
    const before = /([\w$]+)\s*$/.exec(source.slice(Math.max(0, slashAt - 32), slashAt));
    return before !== null && /^(?:return|typeof|instanceof|in|of|new|delete|void|throw|case|do|else|yield|await)$/.test(before[1]!);
  }
  return true;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}
