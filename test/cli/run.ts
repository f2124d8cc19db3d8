/**
 * Runs `warden` (client/cli/main.ts) as a real process for the CLI tests: `runCli` waits for it
 * to exit (bounded) and answers its exit code, stdout and stderr; `startCli` leaves it running
 * and lets a test wait (bounded) for a line of its output, then signal it.
 *
 * Must never: leave a process running after its test (every wait is bounded; a process that
 * overstays is killed).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import type { Cluster } from '../integration/cluster.js';
import { clusterForSuite } from '../integration/suite.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = 'client/cli/main.ts';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly endpoints?: string;
  readonly input?: string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
}

function launch(args: readonly string[], options: CliOptions): ChildProcess {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...options.env };
  if (options.endpoints !== undefined) env['WARDEN_ENDPOINTS'] = options.endpoints;
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  return child;
}

export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = launch(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`warden ${args.join(' ')} did not exit within ${options.timeoutMs ?? 20_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const running = new Set<ChildProcess>();

/** Kill (SIGKILL) every CLI process a test started and left running (a failed wait): call in afterAll. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export class RunningCli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;
  private readonly child: ChildProcess;
  private readonly waiters: (() => void)[] = [];

  constructor(args: readonly string[], options: CliOptions = {}) {
    this.child = launch(args, options);
    running.add(this.child);
    this.child.once('close', () => running.delete(this.child));
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      for (const w of this.waiters) w();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      for (const w of this.waiters) w();
    });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve({ code, stdout: this.stdout, stderr: this.stderr })));
  }

  /** Wait (bounded) until stdout or stderr matches. */
  waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pattern.test(this[stream])) {
          clearTimeout(timer);
          this.waiters.splice(this.waiters.indexOf(check), 1);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(check), 1);
        reject(new Error(`no ${pattern} on ${stream} within ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiters.push(check);
      check();
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Signal it and wait (bounded) for its exit; killed outright past the bound. */
  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 15_000): Promise<CliResult> {
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * What a CLI test file shares: a 3-member cluster (started, with a leader, before its tests;
 * stopped and removed after them) and every CLI process a test left running killed after the
 * file. Read `cluster` and `endpoints` inside tests (they are set once the cluster is up).
 */
export function cliSuite(): { readonly cluster: Cluster; readonly endpoints: string } {
  let cluster: Cluster | undefined;
  clusterForSuite((started) => (cluster = started));
  afterAll(() => killAll());
  return {
    get cluster(): Cluster {
      if (cluster === undefined) throw new Error('the suite\'s cluster is not up yet (read it inside a test)');
      return cluster;
    },
    get endpoints(): string {
      return this.cluster.members.map((m) => m.clientUrl).join(',');
    },
  };
}
