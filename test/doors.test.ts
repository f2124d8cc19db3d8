/**
 * The doors between rooms stay shut: server/raft imports only itself and shared/ and touches no
 * clock, timer or randomness; shared/ imports neither server/ nor client/ nor Node builtins;
 * client/ never imports server/.
 *
 * Pattern: one assertion on the real tree, and the checker itself pinned on throwaway fixture
 * trees so that each door is shown to fail when it is opened.
 *
 * Must never: pass vacuously (the rooms it guards must hold source files), or leave fixture
 * directories behind.
 */

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { blankComments, extractImports, findImportViolations, listSourceFiles } from './doors.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

describe('the repository', () => {
  it('keeps every door shut', () => {
    expect(findImportViolations(repoRoot)).toEqual([]);
  });

  it('has source in the rooms the check guards, so it cannot pass by finding nothing', () => {
    expect(listSourceFiles(join(repoRoot, 'shared')).length).toBeGreaterThan(0);
    // git keeps no empty folders: server/raft exists in a checkout exactly when it holds files.
    if (existsSync(join(repoRoot, 'server/raft'))) {
      expect(listSourceFiles(join(repoRoot, 'server/raft')).length).toBeGreaterThan(0);
    }
  });
});

describe('findImportViolations on fixture trees', () => {
  const fixtureRoots: string[] = [];
  afterEach(() => {
    for (const root of fixtureRoots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  function fixtureTree(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), 'warden-doors-'));
    fixtureRoots.push(root);
    for (const [path, source] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), source);
    }
    return root;
  }

  function violationsIn(files: Record<string, string>): { file: string; line: number; rule: string }[] {
    return findImportViolations(fixtureTree(files)).map(({ file, line, rule }) => ({ file, line, rule }));
  }

  it('accepts a tree that respects every door', () => {
    const violations = violationsIn({
      'server/raft/raft.ts': [
        "import { log } from './log.js';",
        "import type { Entry } from './log/entry.js';",
        "export * from '../../shared/errors.js';",
        '// Never Date.now() or Math.random() here: time enters through tick().',
        "const note = 'process. is named in a string only';",
      ].join('\n'),
      'server/raft/log.ts': 'export const log = 1;',
      'shared/protocol.ts': "import Ajv from 'ajv';\nimport { ERROR_CODES } from './errors.js';",
      'shared/errors.ts': 'export const ERROR_CODES = {};',
      'client/connection.ts': "import { readFile } from 'node:fs/promises';\nimport { ERROR_CODES } from '../shared/errors.js';",
      'server/node/loop.ts': "import { setTimeout } from 'node:timers';\nimport { log } from '../raft/log.js';",
    });
    expect(violations).toEqual([]);
  });

  it('reports raft importing a Node builtin, even as a type import', () => {
    expect(
      violationsIn({
        'server/raft/raft.ts': "import { EventEmitter } from 'node:events';\nimport type { Stats } from 'fs';",
      }),
    ).toEqual([
      { file: 'server/raft/raft.ts', line: 1, rule: 'raft-imports' },
      { file: 'server/raft/raft.ts', line: 2, rule: 'raft-imports' },
    ]);
  });

  it('reports raft importing a package or a sibling room', () => {
    expect(
      violationsIn({
        'server/raft/a.ts': "import pino from 'pino';",
        'server/raft/b.ts': "\nexport { Wal } from '../storage/wal.js';",
        'server/raft/c.ts': "const codec = await import('../transport/codec.js');",
      }),
    ).toEqual([
      { file: 'server/raft/a.ts', line: 1, rule: 'raft-imports' },
      { file: 'server/raft/b.ts', line: 2, rule: 'raft-imports' },
      { file: 'server/raft/c.ts', line: 1, rule: 'raft-imports' },
    ]);
  });

  it('reports each clock, timer, randomness and process reach in raft code, not in its comments', () => {
    const violations = violationsIn({
      'server/raft/impure.ts': [
        '/** Must never call Date.now, Math.random or setTimeout. */',
        'const a = Date.now();',
        'const b = Math.random();',
        'setTimeout(() => {}, 1);',
        'setInterval(() => {}, 1);',
        'setImmediate(() => {});',
        'const c = performance.now();',
        'const d = process.env.SEED;',
        'const e = new Date();',
      ].join('\n'),
    });
    expect(violations.map(({ line, rule }) => `${line}:${rule}`)).toEqual(
      [2, 3, 4, 5, 6, 7, 8, 9].map((line) => `${line}:raft-purity`),
    );
  });

  it('reports the state machine reaching a clock, a Node builtin or another server room, but allows packages', () => {
    const violations = violationsIn({
      'server/state/apply.ts': [
        "import { encode } from '@msgpack/msgpack';",
        "import { readFileSync } from 'node:fs';",
        "import { Raft } from '../raft/raft.js';",
        "import { checkPath } from '../../shared/paths.js';",
        'const now = Date.now();',
      ].join('\n'),
      'server/raft/raft.ts': 'export class Raft {}',
      'shared/paths.ts': 'export function checkPath() {}',
    });
    expect(violations).toEqual([
      { file: 'server/state/apply.ts', line: 2, rule: 'state-imports' },
      { file: 'server/state/apply.ts', line: 3, rule: 'state-imports' },
      { file: 'server/state/apply.ts', line: 5, rule: 'state-purity' },
    ]);
  });

  it('reports shared importing server, client or a Node builtin', () => {
    expect(
      violationsIn({
        'shared/a.ts': "import { startServer } from '../server/main.js';",
        'shared/b.ts': "export * from '../client/index.js';",
        'shared/c.ts': "import { readFileSync } from 'node:fs';",
        'shared/d.ts': "import path from 'path';",
        'shared/nested/e.ts': "import '../../client/polyfill.js';",
      }),
    ).toEqual([
      { file: 'shared/a.ts', line: 1, rule: 'shared-imports' },
      { file: 'shared/b.ts', line: 1, rule: 'shared-imports' },
      { file: 'shared/c.ts', line: 1, rule: 'shared-imports' },
      { file: 'shared/d.ts', line: 1, rule: 'shared-imports' },
      { file: 'shared/nested/e.ts', line: 1, rule: 'shared-imports' },
    ]);
  });

  it('reports client importing server by path, by dynamic import, or through the package name', () => {
    expect(
      violationsIn({
        'package.json': JSON.stringify({ name: 'warden' }),
        'client/a.ts': "import { Raft } from '../server/raft/raft.js';",
        'client/recipes/b.ts': "const api = await import('../../server/api/server.js');",
        'client/c.ts': "import { startServer } from 'warden/server';",
        'client/d.ts': "import { connect } from 'warden';",
      }),
    ).toEqual([
      { file: 'client/a.ts', line: 1, rule: 'client-imports' },
      { file: 'client/c.ts', line: 1, rule: 'client-imports' },
      { file: 'client/recipes/b.ts', line: 1, rule: 'client-imports' },
    ]);
  });

  it('treats an import it cannot follow as a violation', () => {
    expect(
      violationsIn({
        'client/a.ts': 'const name = "../server/x.js";\nconst m = await import(name);',
        'shared/b.ts': "import { x } from '#internal/x.js';",
      }),
    ).toEqual([
      { file: 'client/a.ts', line: 2, rule: 'client-imports' },
      { file: 'shared/b.ts', line: 1, rule: 'shared-imports' },
    ]);
  });

  it('does not fail on missing or empty rooms', () => {
    expect(findImportViolations(fixtureTree({ 'README.md': 'nothing here' }))).toEqual([]);
  });
});

describe('extractImports', () => {
  it('finds every import form with its line, and nothing inside comments', () => {
    const source = [
      "import a from './a.js';",
      "import { b,",
      "  c } from './bc.js';",
      "import * as d from './d.js';",
      "import type { E } from './e.js';",
      "import './side-effect.js';",
      "export * from './f.js';",
      "export { g } from './g.js';",
      "export type { H } from './h.js';",
      "const i = await import('./i.js');",
      "type J = typeof import('./j.js');",
      "// import k from './k.js';",
      "/* export * from './l.js'; */",
      "const url = 'http://example.com/import'; import m from \"./m.js\";",
      'const n = import.meta.url;',
    ].join('\n');
    expect(extractImports(blankComments(source))).toEqual([
      { specifier: './a.js', line: 1 },
      { specifier: './bc.js', line: 2 },
      { specifier: './d.js', line: 4 },
      { specifier: './e.js', line: 5 },
      { specifier: './side-effect.js', line: 6 },
      { specifier: './f.js', line: 7 },
      { specifier: './g.js', line: 8 },
      { specifier: './h.js', line: 9 },
      { specifier: './i.js', line: 10 },
      { specifier: './j.js', line: 11 },
      { specifier: './m.js', line: 14 },
    ]);
  });

  it('keeps a regular expression or string holding comment-like text from hiding code', () => {
    const source = [
      "const quote = /['\"]/;",
      "const slashes = '//';",
      'const template = `a ${"}"} // b`;',
      "import hidden from '../server/x.js';",
    ].join('\n');
    expect(extractImports(blankComments(source))).toEqual([{ specifier: '../server/x.js', line: 4 }]);
  });
});
