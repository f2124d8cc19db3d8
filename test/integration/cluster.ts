/**
 * Real `wardend` processes for integration tests: free ports, a temporary data directory per
 * cluster, JSON-line logs collected per member, and a small protocol client. Everything started
 * here is killed and removed by `stop()`.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { get as httpsGet } from 'node:https';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));

/**
 * A port free now for a member to listen on. Picked at random below the kernel's ephemeral range
 * (32768+): a port the kernel hands out for bind(0) is also what it hands out as the local port
 * of outgoing connections, so another test's client could take it before the member binds it.
 * Two parallel picks meet only by a 1-in-12,000 chance, and a port found taken is skipped.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    // Never the same port twice in one process: a cluster picks six, each free when picked and
    // none held until its member binds, so two could be the same (1 in ~800 per cluster; CI
    // starts ~100), and the second member to bind would fail.
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 20000-31999 after 100 tries');
}

/** Ports this process has handed out (a test file runs in one process: a few hundred at most). */
const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface MemberProcess {
  readonly name: string;
  readonly clientUrl: string;
  readonly httpUrl: string;
  process: ChildProcess | null;
  logs: string[];
}

export interface ClusterOptions {
  /** Members write a V8 CPU profile here when they exit cleanly (SIGTERM), for benchmarks. */
  readonly cpuProfileDir?: string;
  /** More wardend flags for every member (e.g. a small --snapshot-count). */
  readonly extraArgs?: readonly string[];
  /** The server/main.ts to run (e.g. another worktree's, for before/after benchmarks); default this tree's. */
  readonly main?: string;
  /** The Raft tick (default 50 ms here, to keep elections quick in tests; wardend's own default is 100). */
  readonly tickMs?: number;
  /**
   * TLS on both ports from certificates deploy/tls/make-certs.sh wrote in this directory (each
   * member's own, by name): wss:// for clients and peers, https:// for /health and /status.
   */
  readonly tlsDir?: string;
}

export class Cluster {
  readonly members: MemberProcess[] = [];
  readonly dataRoot = mkdtempSync(join(tmpdir(), 'warden-it-'));
  private initialCluster = '';
  private readonly peerPorts = new Map<string, number>();
  private options: ClusterOptions = {};

  static async start(size = 3, options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = await Cluster.plan(size, options);
    for (const member of cluster.members) cluster.launch(member);
    return cluster;
  }

  /** Ports, names and data directories chosen, nothing started: fill the data directories (a restore), then `launch` each member. */
  static async plan(size = 3, options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster();
    cluster.options = options;
    const names = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    for (const name of names) cluster.peerPorts.set(name, await freePort());
    const s = options.tlsDir === undefined ? '' : 's';
    cluster.initialCluster = names.map((n) => `${n}=ws${s}://127.0.0.1:${cluster.peerPorts.get(n)}`).join(',');
    for (const name of names) {
      const clientPort = await freePort();
      cluster.members.push({ name, clientUrl: `ws${s}://127.0.0.1:${clientPort}`, httpUrl: `http${s}://127.0.0.1:${clientPort}`, process: null, logs: [] });
    }
    return cluster;
  }

  /** Every member as name=peerURL, as --initial-cluster takes it. */
  get initialClusterSpec(): string {
    return this.initialCluster;
  }

  /** The --initial-cluster spec of the named members only. */
  specOf(names: readonly string[]): string {
    return this.initialCluster.split(',').filter((entry) => names.includes(entry.split('=')[0]!)).join(',');
  }

  /** A member's peer URL. */
  peerUrlOf(name: string): string {
    return this.initialCluster.split(',').find((entry) => entry.startsWith(`${name}=`))!.slice(name.length + 1);
  }

  dataDirOf(name: string): string {
    return join(this.dataRoot, name);
  }

  member(name: string): MemberProcess {
    return this.members.find((m) => m.name === name)!;
  }

  /** Start `member`; `overrides` changes its --initial-cluster (e.g. a cluster it joins later) and adds flags. */
  launch(member: MemberProcess, overrides: { readonly initialCluster?: string; readonly extraArgs?: readonly string[] } = {}): void {
    const child = spawn(
      process.execPath,
      [
        ...(this.options.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', this.options.cpuProfileDir]),
        '--import', 'tsx', this.options.main ?? MAIN,
        '--name', member.name,
        '--data-dir', this.dataDirOf(member.name),
        '--listen-client', member.clientUrl,
        '--listen-peer', `ws${this.options.tlsDir === undefined ? '' : 's'}://127.0.0.1:${this.peerPorts.get(member.name)}`,
        ...this.tlsArgs(member.name),
        '--initial-cluster', overrides.initialCluster ?? this.initialCluster,
        '--tick-ms', String(this.options.tickMs ?? 50),
        '--log-format', 'json',
        ...(this.options.extraArgs ?? []),
        ...(overrides.extraArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    member.process = child;
    const keep = (chunk: Buffer): void => void member.logs.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('exit', () => {
      if (member.process === child) member.process = null;
    });
  }

  /** A member's TLS flags: its own client and peer certificates, the peer CA. */
  private tlsArgs(name: string): string[] {
    const dir = this.options.tlsDir;
    if (dir === undefined) return [];
    return [
      '--cert-file', join(dir, name, 'client.pem'), '--key-file', join(dir, name, 'client.key'),
      '--peer-cert-file', join(dir, name, 'peer.pem'), '--peer-key-file', join(dir, name, 'peer.key'), '--peer-trusted-ca-file', join(dir, 'peer-ca.pem'),
    ];
  }

  /** Signal a member and wait (bounded) for it to exit; answers its exit code (null if killed by a signal). */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 20_000): Promise<number | null> {
    const member = this.member(name);
    const child = member.process;
    if (child === null) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not exit within ${timeoutMs} ms of ${signal}`));
      }, timeoutMs);
      // 'close', not 'exit': by then its stdout and stderr are drained, so its last log lines are in.
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      child.kill(signal);
    });
  }

  async status(name: string): Promise<Record<string, unknown> | null> {
    try {
      const url = `${this.member(name).httpUrl}/status`;
      if (this.options.tlsDir === undefined) {
        const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        return (await response.json()) as Record<string, unknown>;
      }
      // Under TLS the members' certificates come from the test's own CA, which fetch does not take.
      const ca = readFileSync(join(this.options.tlsDir, 'client-ca.pem'));
      return await new Promise<Record<string, unknown>>((resolve, reject) => {
        const request = httpsGet(url, { ca, timeout: 2_000 }, (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => {
            try {
              resolve(JSON.parse(body) as Record<string, unknown>);
            } catch (error) {
              reject(error as Error);
            }
          });
        });
        request.on('timeout', () => request.destroy(new Error('no answer within 2 s')));
        request.on('error', reject);
      });
    } catch {
      return null;
    }
  }

  /** The leader all running members agree on; waits (bounded) until there is one. */
  async leader(timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = this.members.filter((m) => m.process !== null);
      const seen = await Promise.all(running.map((m) => this.status(m.name)));
      const leaders = new Set(seen.map((s) => s?.['leader'] ?? null));
      if (leaders.size === 1 && !leaders.has(null) && running.some((m) => m.name === [...leaders][0])) return [...leaders][0] as string;
      await new Promise((resolve) => setTimeout(resolve, 50)); // polling interval, bounded by the deadline
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms; logs:\n${this.members.map((m) => `${m.name}: ${m.logs.slice(-5).join('\n')}`).join('\n')}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m.name, 'SIGKILL')));
    rmSync(this.dataRoot, { recursive: true, force: true });
  }
}

/** A protocol client over one WebSocket: requests by id, answers matched by id. */
export class ProtocolClient {
  private nextId = 1;
  private readonly pending = new Map<string | number, (answer: Record<string, unknown>) => void>();
  readonly unmatched: Record<string, unknown>[] = [];
  private unmatchedWaiter: ((answer: Record<string, unknown>) => void) | null = null;
  closed: { code: number; reason: string } | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const answer = JSON.parse(data.toString()) as Record<string, unknown>;
      const waiter = this.pending.get(answer['id'] as string | number);
      if (waiter === undefined) {
        this.unmatched.push(answer);
        const next = this.unmatchedWaiter;
        this.unmatchedWaiter = null;
        next?.(answer);
      } else {
        this.pending.delete(answer['id'] as string | number);
        waiter(answer);
      }
    });
    socket.on('close', (code, reason) => void (this.closed = { code, reason: reason.toString() }));
  }

  static connect(url: string, options: WebSocket.ClientOptions = {}): Promise<ProtocolClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options);
      socket.once('open', () => resolve(new ProtocolClient(socket)));
      socket.once('error', reject);
    });
  }

  request(type: string, fields: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${type} #${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.socket.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  /** Send raw text and wait for the next answer that matches no request (an error frame for bad input). */
  raw(text: string, timeoutMs = 5_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to a raw frame within ${timeoutMs} ms`)), timeoutMs);
      this.unmatchedWaiter = (answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
      this.socket.send(text);
    });
  }

  close(): void {
    this.socket.close();
  }
}

export const b64 = (text: string): string => Buffer.from(text).toString('base64');
export const unb64 = (value: unknown): string => Buffer.from(String(value), 'base64').toString();

/** Poll `probe` every 100 ms until it answers non-null, for at most `ms`; throws naming `what` past it. */
export async function until<T>(what: string, probe: () => Promise<T | null>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, bounded by the deadline
  }
}
