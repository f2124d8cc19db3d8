/**
 * What every `warden` command runs with: the parsed global options, the Output, a client made
 * on first use (and closed when the command ends) with the TLS files and the login (`--user`,
 * credentials.ts) the options name, an AbortSignal that Ctrl-C (SIGINT) or
 * SIGTERM fires — long-running commands (watch, lock, elect, lease keepalive) end cleanly on it
 * — and the exit code (0 success, 1 failed operation, 2 bad usage).
 *
 * Pattern: Execute Around — `action(fn)` wraps each handler: it opens what the handler needs,
 * turns a thrown WardenError into exit 1 and a UsageError into exit 2, and closes every client.
 *
 * Must never: leave a client open after its command (the process must exit promptly); exit 0
 * after a failed operation; swallow an error without printing it.
 */

import { readFileSync } from 'node:fs';
import { connect, type AuthCredentials, type ClientTls, type WardenClient } from '../../index.js';
import { credentialsOf, passwordFlag, TERMINAL, type Asker } from '../credentials.js';
import { FORMATS, Output, UsageError, type Format } from '../output.js';

export interface GlobalArgs {
  readonly endpoints: string;
  readonly output: Format;
  readonly timeout: number | undefined;
  /** PEM files for wss:// endpoints: the CA that signed the members' certificates, and a client certificate and key. */
  readonly cacert?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** `--user` NAME or NAME:PASSWORD (env WARDEN_USER). */
  readonly user?: string | undefined;
  /** `--password` as yargs parsed it (a string; false from `user add --no-password`; an array of both). */
  readonly password?: unknown;
}

/** The global options of a command's arguments, checked (yargs gives every command its own shape). */
function globalArgsOf(args: unknown): GlobalArgs {
  const a = (typeof args === 'object' && args !== null ? args : {}) as Record<string, unknown>;
  const output = a['output'];
  const timeout = a['timeout'];
  return {
    endpoints: typeof a['endpoints'] === 'string' ? a['endpoints'] : DEFAULT_ENDPOINTS,
    output: output === 'json' || output === 'simple' || output === 'table' ? output : 'simple',
    timeout: typeof timeout === 'number' && Number.isFinite(timeout) ? timeout : undefined,
    ...(typeof a['cacert'] === 'string' ? { cacert: a['cacert'] } : {}),
    ...(typeof a['cert'] === 'string' ? { cert: a['cert'] } : {}),
    ...(typeof a['key'] === 'string' ? { key: a['key'] } : {}),
    ...(typeof a['user'] === 'string' ? { user: a['user'] } : {}),
    ...(a['password'] === undefined ? {} : { password: a['password'] }),
  };
}

/** The TLS files the options name, read (a UsageError naming the flag when one cannot be). */
export function tlsOf(args: Pick<GlobalArgs, 'cacert' | 'cert' | 'key'>): ClientTls | undefined {
  if ((args.cert === undefined) !== (args.key === undefined)) throw new UsageError('--cert and --key go together');
  const read = (flag: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new UsageError(`--${flag}: cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const [ca, cert, key] = [read('cacert', args.cacert), read('cert', args.cert), read('key', args.key)];
  return ca === undefined && cert === undefined ? undefined : { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}

/** What a command's clients connect with besides endpoints: TLS and the login (asked for on the terminal when needed). */
export async function accessOf(args: unknown, asker: Asker = TERMINAL): Promise<{ readonly tls?: ClientTls; readonly auth?: AuthCredentials }> {
  const global = globalArgsOf(args);
  const tls = tlsOf(global);
  const auth = await credentialsOf(global.user, global.password, process.env['WARDEN_PASSWORD'], asker);
  return { ...(tls === undefined ? {} : { tls }), ...(auth === undefined ? {} : { auth }) };
}

export const DEFAULT_ENDPOINTS = 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';

export class Context {
  readonly out: Output;
  readonly endpoints: string[];
  readonly timeoutMs: number | undefined;
  private readonly tls: ClientTls | undefined;
  private readonly args: GlobalArgs;
  private auth: AuthCredentials | undefined;
  private readonly clients: WardenClient[] = [];
  private readonly controller = new AbortController();
  private mainClient: WardenClient | null = null;

  constructor(args: GlobalArgs) {
    if (!FORMATS.includes(args.output)) throw new UsageError(`--output (or WARDEN_OUTPUT): one of ${FORMATS.join(', ')}, got ${JSON.stringify(args.output)}`);
    this.out = new Output(args.output);
    this.endpoints = args.endpoints.split(',').map((e) => e.trim()).filter((e) => e !== '');
    if (this.endpoints.length === 0) throw new UsageError('--endpoints: give at least one ws:// URL');
    for (const e of this.endpoints) if (!/^wss?:\/\//.test(e)) throw new UsageError(`--endpoints: ${JSON.stringify(e)} is not a ws:// or wss:// URL`);
    if (args.timeout !== undefined && (!Number.isFinite(args.timeout) || args.timeout <= 0)) throw new UsageError('--timeout (or WARDEN_TIMEOUT): give a positive number of milliseconds');
    this.timeoutMs = args.timeout;
    this.tls = tlsOf(args);
    this.args = args;
  }

  /** Settle who the clients speak as (`--user`): the password may be asked for on the terminal. Before the first client. */
  async signIn(asker: Asker = TERMINAL): Promise<void> {
    this.auth = await credentialsOf(this.args.user, this.args.password, process.env['WARDEN_PASSWORD'], asker);
  }

  /** Whether `--no-password` was given (`user add`: a user without a password). */
  get noPassword(): boolean {
    return passwordFlag(this.args.password).none;
  }

  /** Fired by Ctrl-C (SIGINT) or SIGTERM. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stop waiting (as Ctrl-C does). */
  stop(): void {
    this.controller.abort();
  }

  /** The client on every endpoint (made on first use). */
  get client(): WardenClient {
    this.mainClient ??= this.open(this.endpoints);
    return this.mainClient;
  }

  /** A client of its own (e.g. one endpoint alone, for `endpoint status`); closed with the rest. */
  open(endpoints: readonly string[]): WardenClient {
    const client = connect({ endpoints, ...(this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs }), ...(this.tls === undefined ? {} : { tls: this.tls }), ...(this.auth === undefined ? {} : { auth: this.auth }) });
    this.clients.push(client);
    return client;
  }

  /** Resolves when Ctrl-C (or SIGTERM) arrives. */
  interrupted(): Promise<void> {
    return new Promise((resolve) => {
      if (this.signal.aborted) resolve();
      else this.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.clients.map((c) => c.close()));
  }
}

/**
 * Wrap a handler: a Context for it, errors to exit codes, clients closed after. A `long` command
 * (watch, lock, elect, keepalive, check) ends cleanly on Ctrl-C through `ctx.signal`; any other
 * exits 130 at once on Ctrl-C (a request to a cluster that does not answer is given up). A
 * second Ctrl-C always exits at once.
 */
export function action<A>(fn: (ctx: Context, args: A) => Promise<void | number>, options: { readonly long?: boolean } = {}): (args: A) => Promise<void> {
  return async (args: A): Promise<void> => {
    let ctx: Context | null = null;
    const onSignal = (): void => {
      if (options.long !== true || ctx === null || ctx.signal.aborted) process.exit(130);
      ctx.stop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      ctx = new Context(globalArgsOf(args));
      await ctx.signIn();
      const code = await fn(ctx, args);
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (error) {
      const out = ctx?.out ?? new Output('simple');
      if (error instanceof UsageError) {
        out.error(error);
        process.stderr.write('Run with --help for usage.\n');
        process.exitCode = 2;
      } else {
        out.error(error);
        process.exitCode = 1;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await ctx?.close();
    }
  };
}

/** A whole number ≥ min, or a UsageError naming the argument. */
export function integer(value: unknown, name: string, min = 0): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name}: expected a whole number ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** A path as Warden spells it: absolute. */
export function path(value: unknown, name = 'PATH'): string {
  const p = String(value);
  if (!p.startsWith('/')) throw new UsageError(`${name}: a path starts with "/", got ${JSON.stringify(p)}`);
  return p;
}

/** All of stdin, as text. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
