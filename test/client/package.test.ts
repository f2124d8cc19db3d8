/**
 * The package as a user gets it: `npm pack` (which cleans and builds dist/ through `prepack`),
 * the tarball installed into a fresh project outside the repo, then used from plain JavaScript
 * (the exports exist; `connect()` talks to a member embedded from `warden/server`; the `browser`
 * export condition picks the browser entry) and from TypeScript (`tsc --noEmit` with this repo's
 * compiler, as a Node user and as a browser user; a deliberate type error must be caught, so a
 * package whose types fell back to `any` fails here).
 *
 * The install is the whole dependency set from npm's cache (`--prefer-offline`, a few seconds):
 * nothing is omitted, so a dependency the package forgot to declare shows up as a failed import.
 *
 * Must never: leave the temporary project, the tarball or a member's data behind; run a command
 * without a time limit.
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const NODE_TYPES = join(REPO, 'node_modules', '@types');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (or kills it at the limit); never throws for a non-zero exit. */
function run(command: string, args: readonly string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024, env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (error !== null && error.killed ? `\n[killed after ${timeoutMs} ms]` : '') });
    });
  });
}

function expectOk(result: Run, what: string): void {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stdout.slice(-4_000)}\n${result.stderr.slice(-4_000)}`);
}

// npm's own environment from an `npm test` run above us would redirect the nested npm (prefix, global…).
const npmEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')));

let work = '';
let project = '';
let packedFiles: string[] = [];
const timings: Record<string, number> = {};

async function timed<T>(label: string, step: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await step();
  } finally {
    timings[label] = Math.round(performance.now() - start);
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'warden-pack-'));
  expect(relative(REPO, work).startsWith('..')).toBe(true); // the project must not see the repo's node_modules
  const packed = await timed('pack', () => run('npm', ['pack', '--json', '--pack-destination', work], REPO, 120_000, npmEnv));
  expectOk(packed, 'npm pack');
  // `--json` prints the prepack script's output first; the JSON report is the last top-level array.
  const report = JSON.parse(packed.stdout.slice(packed.stdout.lastIndexOf('\n[') + 1)) as { filename: string; files: { path: string }[] }[];
  packedFiles = report[0]!.files.map((file) => file.path);
  const tarball = join(work, report[0]!.filename);
  project = join(work, 'user-project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'warden-user', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const installed = await timed('install', () => run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project, 150_000, npmEnv));
  expectOk(installed, 'npm install of the tarball');
}, 300_000);

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
  console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
});

describe('the packed package', () => {
  it('holds the built client, server and shared code, the README, and no tests or sources', () => {
    for (const file of ['dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/browser.js', 'dist/server/server.js', 'dist/server/server.d.ts', 'dist/server/main.js', 'dist/shared/errors.js', 'README.md', 'package.json']) {
      expect(packedFiles, file).toContain(file);
    }
    const strays = packedFiles.filter((file) => !file.startsWith('dist/') && !['README.md', 'package.json'].includes(file));
    expect(strays).toEqual([]);
    expect(packedFiles.filter((file) => /(^|\/)test\/|\.test\.|(?<!\.d)\.ts$/.test(file))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules', 'warden', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).toContain('ws');
    expect(existsSync(join(project, 'node_modules', 'ws'))).toBe(true);
  });

  it('is imported from plain JavaScript and talks to a member embedded from warden/server', async () => {
    writeFileSync(
      join(project, 'use.mjs'),
      `import { connect, WardenError, cmp, op } from 'warden';
import { startServer } from 'warden/server';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = { exports: { connect: typeof connect, WardenError: typeof WardenError, cmp: typeof cmp, op: typeof op } };
const dataDir = mkdtempSync(join(tmpdir(), 'warden-pack-member-'));
const member = await startServer({ name: 'solo', dataDir, listenClient: 'ws://127.0.0.1:0', listenPeer: 'ws://127.0.0.1:0', tickMs: 10 });
const client = connect({ endpoints: [member.clientUrl], timeoutMs: 20000 });
try {
  await client.put('/greeting', 'hello');
  out.get = (await client.get('/greeting'))?.value ?? null;
  const txn = await client.txn().if(cmp.value('/greeting', '=', 'hello')).do(op.put('/greeting', 'bye')).else().commit();
  out.txn = txn.succeeded;
  out.after = (await client.get('/greeting'))?.value ?? null;
  try {
    await client.create('/greeting', 'again');
  } catch (error) {
    out.refused = error instanceof WardenError ? error.code : String(error);
  }
} finally {
  await client.close();
  await member.close();
  rmSync(dataDir, { recursive: true, force: true });
}
process.stdout.write('\\nRESULT ' + JSON.stringify(out) + '\\n');
`,
    );
    const used = await timed('javascript', () => run(process.execPath, ['use.mjs'], project, 60_000));
    expectOk(used, 'node use.mjs');
    const line = used.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, used.stdout + used.stderr).toBeDefined();
    expect(JSON.parse(line!.slice('RESULT '.length))).toEqual({
      exports: { connect: 'function', WardenError: 'function', cmp: 'object', op: 'object' },
      get: 'hello',
      txn: true,
      after: 'bye',
      refused: 'NODE_EXISTS',
    });
  });

  it('resolves the browser export condition to the browser entry, and Node to the ws entry', async () => {
    const script = "process.stdout.write(import.meta.resolve('warden') + ' ' + typeof (await import('warden')).connect)";
    const asNode = await run(process.execPath, ['--input-type=module', '-e', script], project, 20_000);
    const asBrowser = await run(process.execPath, ['--conditions=browser', '--input-type=module', '-e', script], project, 20_000);
    expectOk(asNode, 'node resolve');
    expectOk(asBrowser, 'node --conditions=browser resolve');
    expect(asNode.stdout).toMatch(/\/node_modules\/warden\/dist\/client\/index\.js function$/);
    expect(asBrowser.stdout).toMatch(/\/node_modules\/warden\/dist\/client\/browser\.js function$/);
  });

  it('type-checks a TypeScript user (Node and browser settings) and catches a type error', async () => {
    const good = `import { connect, cmp, op, WardenError, type ErrorCode, type TxnResult, type WardenNode, type WardenClient } from 'warden';

export async function use(client: WardenClient): Promise<string> {
  const node: WardenNode<string> | null = await client.get('/config/a');
  const bytes: WardenNode<Uint8Array> | null = await client.get('/config/a', { as: 'bytes', consistency: 'serializable' });
  const result: TxnResult = await client
    .txn()
    .if(cmp.exists('/config/a'), cmp.version('/config/a', '=', node?.stat.version ?? 0))
    .do(op.put('/config/a', 'next'), op.get('/config/a'))
    .else(op.create('/config/a', new Uint8Array([1, 2])))
    .commit({ signal: AbortSignal.timeout(1000) });
  try {
    await client.create('/config/a', 'x', { signal: new AbortController().signal });
  } catch (error) {
    if (error instanceof WardenError) {
      const code: ErrorCode = error.code;
      const retry: boolean = error.retryable;
      const unknown: boolean = error.outcomeUnknown;
      return \`\${code} \${retry} \${unknown}\`;
    }
  }
  return \`\${node?.value ?? ''} \${bytes?.value.byteLength ?? 0} \${result.succeeded} \${result.revision}\`;
}

export const client: WardenClient = connect({ endpoints: ['ws://127.0.0.1:7071'], timeoutMs: 5000 });
`;
    const bad = `import { connect } from 'warden';
const client = connect({ endpoints: 'ws://127.0.0.1:7071' });
const node = await client.get('/a');
export const wrong: number | undefined = node?.value;
`;
    writeFileSync(join(project, 'good.ts'), good);
    writeFileSync(join(project, 'bad.ts'), bad);
    const base = { target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false };
    const configs = {
      // A Node user: @types/node (taken from this repo, since the user project installs only the tarball).
      'tsconfig.node.json': { compilerOptions: { ...base, module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], typeRoots: [NODE_TYPES] }, files: ['good.ts'] },
      // A browser user: DOM types, no Node types, a bundler resolving the `browser` condition.
      'tsconfig.browser.json': { compilerOptions: { ...base, module: 'ESNext', moduleResolution: 'Bundler', customConditions: ['browser'], lib: ['ES2022', 'DOM'], types: [] }, files: ['good.ts'] },
      'tsconfig.bad.json': { compilerOptions: { ...base, module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], typeRoots: [NODE_TYPES] }, files: ['bad.ts'] },
    };
    for (const [name, config] of Object.entries(configs)) writeFileSync(join(project, name), JSON.stringify(config, null, 2));

    const [asNode, asBrowser, wrong] = await timed('typescript', () =>
      Promise.all(['tsconfig.node.json', 'tsconfig.browser.json', 'tsconfig.bad.json'].map((config) => run(process.execPath, [TSC, '-p', config], project, 60_000))),
    );
    expectOk(asNode, 'tsc (Node user)');
    expectOk(asBrowser, 'tsc (browser user)');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout + wrong.stderr).toMatch(/bad\.ts.*TS2322/);
  });
});
