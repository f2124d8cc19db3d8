/**
 * The client runs in a browser: client/browser.ts bundles with esbuild for the browser (as a
 * user's bundler would) with no Node builtin and no `ws` among its inputs, and every client/
 * module other than the Node entry (client/index.ts, the one transport seam allowed `ws`)
 * imports neither, directly or through what it imports. client/cli/ (the `warden` CLI, a Node
 * program built on the library) is not part of what a browser loads, and is left out.
 *
 * Pattern: a resolver plugin marks builtins and `ws` external and records who asked for them, so
 * a failure names the file; a static scan (test/doors.ts's lexer) judges each file's own imports.
 *
 * Must never: pass a bundle that holds a Node builtin or `ws`; miss a file in client/.
 */

import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { blankComments, extractImports, listSourceFiles } from '../doors.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLIENT = join(REPO, 'client');
const NODE_ENTRY = join(CLIENT, 'index.ts');
/** The `warden` CLI: a Node program on top of the library, never bundled for a browser. */
const CLI = join(CLIENT, 'cli');
const libraryFiles = (): string[] => listSourceFiles(CLIENT).filter((file) => !file.startsWith(CLI + '/'));
const BUILTINS = new Set(builtinModules);

/** Is this specifier a Node builtin or `ws` (or a subpath of either)? */
function forbidden(specifier: string): boolean {
  const bare = specifier.startsWith('node:') ? specifier.slice('node:'.length) : specifier;
  const head = bare.split('/')[0]!;
  return specifier.startsWith('node:') || BUILTINS.has(bare) || BUILTINS.has(head) || head === 'ws';
}

interface Offence {
  readonly importer: string;
  readonly specifier: string;
}

/** Marks builtins and `ws` external (so the build goes on) and records each request for one. */
function recordForbidden(offences: Offence[]): Plugin {
  return {
    name: 'record-node-only-imports',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /.*/ }, (args) => {
        if (!forbidden(args.path)) return undefined;
        offences.push({ importer: relative(REPO, args.importer), specifier: args.path });
        return { path: args.path, external: true };
      });
    },
  };
}

async function bundleForBrowser(entryPoints: string[]): Promise<{ offences: Offence[]; metafile: Metafile; output: string; errors: number }> {
  const offences: Offence[] = [];
  const result = await build({
    entryPoints,
    absWorkingDir: REPO,
    outdir: join(REPO, 'dist-browser-test'), // not written (write: false); esbuild needs it for several entries
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    bundle: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [recordForbidden(offences)],
  });
  const output = result.outputFiles.map((file) => file.text).join('\n');
  return { offences, metafile: result.metafile, output, errors: result.errors.length };
}

/** Input paths that are a Node builtin, `ws`'s package, or anything under node_modules that needs Node. */
function suspiciousInputs(metafile: Metafile): string[] {
  const found: string[] = [];
  for (const [path, input] of Object.entries(metafile.inputs)) {
    if (/(^|\/)node_modules\/ws\//.test(path) || forbidden(path)) found.push(path);
    for (const imported of input.imports) if (forbidden(imported.path) || /node_modules\/ws\//.test(imported.path)) found.push(`${path} -> ${imported.path}`);
  }
  return found;
}

describe('the client in a browser', () => {
  it('client/browser.ts bundles for the browser with no Node builtin and no ws', async () => {
    const { offences, metafile, output, errors } = await bundleForBrowser([join(CLIENT, 'browser.ts')]);
    expect(errors).toBe(0);
    expect(offences).toEqual([]);
    expect(suspiciousInputs(metafile)).toEqual([]);
    // The bundle holds the client itself (not an empty shell): its inputs include the core modules.
    const inputs = Object.keys(metafile.inputs);
    for (const core of ['client/client.ts', 'client/channel.ts', 'client/requests.ts', 'shared/errors.ts']) expect(inputs).toContain(core);
    expect(output).toMatch(/export\s*\{[^}]*\bconnect\b/);
    // And it loads as a self-contained ES module: no import left to resolve.
    const loaded = (await import(`data:text/javascript;base64,${Buffer.from(output).toString('base64')}`)) as Record<string, unknown>;
    expect(typeof loaded['connect']).toBe('function');
    expect(typeof loaded['WardenError']).toBe('function');
  });

  it('every client/ module but the Node entry bundles without a Node builtin or ws', async () => {
    const entries = libraryFiles().filter((file) => file !== NODE_ENTRY && !file.endsWith('.d.ts'));
    expect(entries.length).toBeGreaterThan(5);
    const { offences, metafile, errors } = await bundleForBrowser(entries);
    expect(errors).toBe(0);
    expect(offences).toEqual([]);
    expect(suspiciousInputs(metafile)).toEqual([]);
  });

  it('no client/ file but client/index.ts imports a Node builtin or ws (static scan)', () => {
    const files = libraryFiles();
    expect(files).toContain(NODE_ENTRY);
    const found: string[] = [];
    for (const file of files) {
      if (file === NODE_ENTRY) continue;
      for (const { specifier, line } of extractImports(blankComments(readFileSync(file, 'utf8')))) {
        if (specifier === null || forbidden(specifier)) found.push(`${relative(REPO, file)}:${line} imports ${specifier ?? '(a computed specifier)'}`);
      }
    }
    expect(found).toEqual([]);
    // The scan sees imports at all: the Node entry's own `ws` import is found by the same lexer.
    const nodeEntryImports = extractImports(blankComments(readFileSync(NODE_ENTRY, 'utf8'))).map((reference) => reference.specifier);
    expect(nodeEntryImports).toContain('ws');
  });
});
