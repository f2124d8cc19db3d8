/**
 * A raw client-protocol connection for the adversarial suite and `npm run bench:adversarial`:
 * requests matched to answers by id, frames that match no request (pushes, answers with id null)
 * queued for whoever waits on them, raw text for frames no well-behaved client sends, and the
 * TCP socket underneath (to stop reading). Plus the small helpers every attack uses: codes of
 * answers, session stamps, canonical base64, a bounded pipeline.
 *
 * Only the wire protocol (package ws), never a server module, so the same code attacks any
 * version of the server (the old one has no `secret` and no `outcome`: both are optional here).
 *
 * Must never: wait without a bound (every wait has a timeout and says so in its answer); throw
 * from a socket handler; hold a frame nobody asked to keep (unmatched frames are kept only up
 * to a bound unless an `onFrame` consumer takes them).
 */

import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';

export type Answer = Record<string, unknown>;
export type Fields = Record<string, unknown>;

/** Milliseconds on a clock shared by the main thread and worker threads. */
export const clock = (): number => performance.timeOrigin + performance.now();
export const MiB = 1024 * 1024;
export const b64 = (text: string): string => Buffer.from(text).toString('base64');
/** A canonical base64 value of `bytes` bytes. */
export const valueOf = (bytes: number, fill = 0x78): string => Buffer.alloc(bytes, fill).toString('base64');

/** The error code of an answer, or null when it is ok. */
export function codeOf(answer: Answer): string | null {
  if (answer['ok'] === true) return null;
  const error = answer['error'] as { code?: unknown } | undefined;
  return typeof error?.code === 'string' ? error.code : 'NO_CODE';
}
/** The error object of an answer ({} when it has none). */
export function errorOf(answer: Answer): { code?: string; message?: string; outcome?: string; limit?: { name?: string; flag?: string; value?: number } } {
  return (answer['error'] as ReturnType<typeof errorOf> | undefined) ?? {};
}
/** One line for a failure message: the code and the start of the message, or the answer itself. */
export function brief(answer: Answer | null | undefined, max = 200): string {
  if (answer === null || answer === undefined) return '(none)';
  const code = codeOf(answer);
  if (code !== null) return `error ${code}: ${String(errorOf(answer).message ?? '').slice(0, max)}`;
  const text = JSON.stringify(answer);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A client session as `register` answers it; `secret` is absent on servers that have none. */
export interface Session {
  readonly id: number;
  readonly secret?: string;
}
export function sessionOf(answer: Answer): Session {
  if (codeOf(answer) !== null) throw new Error(`register refused: ${brief(answer)}`);
  const id = (answer['clientId'] ?? (answer['client'] as { id?: unknown } | undefined)?.id) as number;
  return typeof answer['secret'] === 'string' ? { id, secret: answer['secret'] } : { id };
}
/** A session stamp; `secret` overrides the session's own (a forged one). */
export function stamp(session: Session, seq: number, ackedThrough: number, secret: string | undefined = session.secret): Fields {
  return { id: session.id, seq, ackedThrough, ...(secret === undefined ? {} : { secret }) };
}
/** A different secret of the same shape (32 hex digits), or one when the server gave none. */
export function forgedSecret(secret: string | undefined): string {
  if (secret === undefined) return '0'.repeat(32);
  return secret.slice(0, -1) + (secret.endsWith('0') ? '1' : '0');
}

const CLOSED = (why: string): Answer => ({ ok: false, error: { code: 'CONNECTION_CLOSED', message: why } });
/** Unmatched frames kept for `nextFrame` when no `onFrame` consumer is set. */
const UNMATCHED_KEPT_MAX = 10_000;

export class Conn {
  private nextId = 1;
  private readonly pending = new Map<string | number, (answer: Answer) => void>();
  private readonly closeWaiters: (() => void)[] = [];
  private readonly unmatched: Answer[] = [];
  private frameWaiter: { match: (frame: Answer) => boolean; resolve: (frame: Answer | null) => void } | null = null;
  closed: { code: number; reason: string; at: number } | null = null;
  /** Frames that match no pending request go here when set (pushes, answers to `fire`). */
  onFrame: ((frame: Answer, bytes: number) => void) | null = null;
  bytesIn = 0;
  framesIn = 0;
  /** When the last frame had been received whole (before it was parsed). */
  lastReceivedAt = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: RawData) => {
      this.lastReceivedAt = clock();
      const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.bytesIn += buffer.length;
      this.framesIn += 1;
      let frame: Answer;
      try {
        frame = JSON.parse(buffer.toString()) as Answer;
      } catch (error) {
        frame = { unparsable: (error as Error).message };
      }
      const id = frame['id'];
      const waiter = typeof id === 'number' || typeof id === 'string' ? this.pending.get(id) : undefined;
      if (waiter !== undefined) {
        this.pending.delete(id as string | number);
        waiter(frame);
      } else if (this.frameWaiter !== null && this.frameWaiter.match(frame)) {
        const { resolve } = this.frameWaiter;
        this.frameWaiter = null;
        resolve(frame);
      } else if (this.onFrame !== null) {
        this.onFrame(frame, buffer.length);
      } else if (this.unmatched.length < UNMATCHED_KEPT_MAX) {
        this.unmatched.push(frame);
      }
    });
    socket.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString(), at: clock() };
      const waiters = [...this.pending.values()];
      this.pending.clear();
      for (const waiter of waiters) waiter(CLOSED(`closed ${code} ${reason.toString()}`));
      for (const waiter of this.closeWaiters.splice(0)) waiter();
      this.frameWaiter?.resolve(null);
      this.frameWaiter = null;
    });
    socket.on('error', () => undefined); // a 'close' follows
  }

  static open(url: string, options: { maxPayload?: number } = {}, timeoutMs = 10_000): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, ...(options.maxPayload === undefined ? {} : { maxPayload: options.maxPayload }) });
      // Attached before 'open': a member that answers the upgrade with a frame and a close at once
      // (too many connections) must not lose its frame to a late listener.
      const conn = new Conn(socket);
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`no connection to ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('open', () => {
        clearTimeout(timer);
        resolve(conn);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  get open(): boolean {
    return this.closed === null && this.socket.readyState === WebSocket.OPEN;
  }

  /** A request; resolves with its answer, or a client-side CLIENT_TIMEOUT / CONNECTION_CLOSED error. */
  call(type: string, fields: Fields = {}, timeoutMs = 30_000): Promise<Answer> {
    if (!this.open) return Promise.resolve(CLOSED('the connection is closed'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: { code: 'CLIENT_TIMEOUT', message: `no answer to ${type} within ${timeoutMs} ms` } });
      }, timeoutMs);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.socket.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  /** A request whose answer goes to `onFrame` (or the unmatched queue). */
  fire(type: string, fields: Fields = {}): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ id: this.nextId++, type, ...fields }));
  }

  sendRaw(text: string): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
  }

  /** The next frame matching no request that satisfies `match` (queued ones first), or null at the timeout or a close. */
  nextFrame(timeoutMs: number, match: (frame: Answer) => boolean = () => true): Promise<Answer | null> {
    const queued = this.unmatched.findIndex(match);
    if (queued >= 0) return Promise.resolve(this.unmatched.splice(queued, 1)[0]!);
    if (this.closed !== null) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.frameWaiter = null;
        resolve(null);
      }, timeoutMs);
      this.frameWaiter = {
        match,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      };
    });
  }

  /** Send raw text and wait (bounded) for the next frame that matches no request: its answer. */
  raw(text: string, timeoutMs = 10_000): Promise<Answer | null> {
    const next = this.nextFrame(timeoutMs);
    this.sendRaw(text);
    return next;
  }

  /** Resolves true when the connection closed, false at the timeout. */
  whenClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** The TCP socket under the WebSocket: `pause()` stops reading. */
  get tcp(): Socket {
    return (this.socket as unknown as { _socket: Socket })._socket;
  }

  terminate(): void {
    try {
      this.socket.terminate();
    } catch {
      // already gone
    }
  }
}

export interface PipelineResult {
  readonly ok: number;
  readonly failed: number;
  readonly codes: Record<string, number>;
  readonly answers: Answer[];
  readonly ms: number;
}

/** `total` requests over one connection, `inFlight` at a time, bounded by a deadline. */
export async function pipeline(
  conn: Conn,
  total: number,
  inFlight: number,
  make: (i: number) => readonly [string, Fields],
  options: { timeoutMs?: number; deadlineMs?: number; keep?: boolean } = {},
): Promise<PipelineResult> {
  const started = clock();
  const deadline = started + (options.deadlineMs ?? 600_000);
  const codes: Record<string, number> = {};
  const answers: Answer[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < total && clock() < deadline && conn.open) {
      const i = next++;
      const [type, fields] = make(i);
      const answer = await conn.call(type, fields, options.timeoutMs ?? 60_000);
      if (options.keep === true) answers[i] = answer;
      const code = codeOf(answer);
      if (code === null) ok += 1;
      else {
        failed += 1;
        codes[code] = (codes[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  const unsent = total - ok - failed;
  if (unsent > 0) codes['NOT_SENT'] = unsent;
  return { ok, failed: failed + unsent, codes, answers, ms: clock() - started };
}

/** `count` creates under `parent` (which must exist), `perTxn` to a transaction, 16 transactions in flight. */
export async function createChildren(conn: Conn, parent: string, count: number, perTxn = 128): Promise<void> {
  const name = (i: number): string => `${parent}/c${String(i).padStart(7, '0')}`;
  const txns = Math.ceil(count / perTxn);
  const r = await pipeline(conn, txns, 16, (k) => ['txn', { success: Array.from({ length: Math.min(perTxn, count - k * perTxn) }, (_, j) => ({ op: 'create', path: name(k * perTxn + j) })) }], { timeoutMs: 60_000, deadlineMs: 120_000 });
  if (r.failed > 0) throw new Error(`creating ${count} children of ${parent} failed: ${JSON.stringify(r.codes)}`);
}

/** Resolves once `condition()` holds, polling every `everyMs`; false at the deadline. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = clock() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (clock() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
