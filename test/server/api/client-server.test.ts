/**
 * The client port (server/api/client-server.ts) on real sockets, with stand-in request handlers:
 * request ids are answered as the client sent them or as null (never echoed when refused); no
 * frame can take the process down; connections, requests in flight (per connection, and in
 * bytes per member) and unread answers (per connection, and per member) are bounded, each
 * past its bound with an error or close reason that names the limit — while a well-behaved
 * connection is served.
 *
 * Must never: wait without a bound; leave a server or socket open (afterEach closes them).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startClientServer, type ClientServer } from '../../../server/api/client-server.js';
import type { ClientConnection, RequestHandlers } from '../../../server/api/handlers.js';
import { resolveLimits, type Limits } from '../../../server/limits.js';
import { TurnBudget } from '../../../server/api/turn-budget.js';

const quiet = { info() {}, warn() {}, error() {} };
const open: { server: ClientServer; sockets: WebSocket[] }[] = [];

afterEach(async () => {
  for (const { server, sockets } of open.splice(0)) {
    for (const socket of sockets) socket.terminate();
    await server.close();
  }
});

/** Handlers that answer `status` at once, `echo` with `size` bytes, and hold `hold` until released. */
function stubHandlers(): RequestHandlers & { held: (() => void)[]; thrown: number } {
  const held: (() => void)[] = [];
  const stub = {
    held,
    thrown: 0,
    isWrite: () => false,
    chargedWhenServed: () => false,
    disconnected: (_c: ClientConnection) => undefined,
    async handle(type: string, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
      if (type === 'get') return { ok: true, node: { path: '/x', value: 'A'.repeat((frame['revision'] as number | undefined) ?? 10), stat: {} } };
      if (type === 'watchProgress') return new Promise((resolve) => held.push(() => resolve({ ok: true })));
      if (type === 'leaseList') return { ok: true, count: BigInt(1) }; // an answer JSON cannot write
      if (type === 'compact') {
        stub.thrown += 1;
        throw new Error('a bug in a handler');
      }
      return { ok: true };
    },
  };
  return stub;
}

async function serve(overrides: Partial<Limits> = {}) {
  const handlers = stubHandlers();
  const limits = resolveLimits(overrides);
  const server = await startClientServer({ host: '127.0.0.1', port: 0, limits, answerBudget: new TurnBudget(limits.turnAnswerBytesMax), logger: quiet, handlers, healthy: () => true, status: () => ({ ok: 1 }), live: () => true, readiness: () => ({ ready: true, failed: [] }), metrics: { observeRequest: () => undefined, text: () => Promise.resolve(''), contentType: 'text/plain' } });
  const entry = { server, sockets: [] as WebSocket[] };
  open.push(entry);
  const connect = async (): Promise<Client> => {
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}`);
    entry.sockets.push(socket);
    const client = new Client(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  };
  return { server, handlers, connect };
}

class Client {
  readonly frames: Record<string, unknown>[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Record<string, unknown>);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Wait (at most 5 s) until `count` frames have arrived. */
  async frameCount(count: number): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + 5_000;
    while (this.frames.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.frames.length} of ${count} frames arrived`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100); // re-check the deadline at least this often
      });
    }
    return this.frames;
  }

  async request(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
    const before = this.frames.length;
    this.send(frame);
    return (await this.frameCount(before + 1))[before]!;
  }
}

describe('request ids', () => {
  it('answers an id that is not a short string or a safe integer as null and never echoes it; the connection goes on', async () => {
    const { connect } = await serve();
    const client = await connect();
    const deep = `{"id":${'['.repeat(5_000)}${']'.repeat(5_000)},"type":"status"}`;
    client.send(deep);
    client.send(`{"id":9007199254740993,"type":"status"}`);
    client.send({ id: 'x'.repeat(129), type: 'status' });
    client.send({ id: { nested: true }, type: 'status' });
    const refused = await client.frameCount(4);
    for (const frame of refused) expect(frame).toMatchObject({ id: null, ok: false, error: { code: 'INVALID_ARGUMENT', outcome: 'final' } });
    expect(await client.request({ id: Number.MAX_SAFE_INTEGER, type: 'status' })).toMatchObject({ id: Number.MAX_SAFE_INTEGER, ok: true });
    expect(await client.request({ id: 'x'.repeat(128), type: 'status' })).toMatchObject({ id: 'x'.repeat(128), ok: true });
  });

  it('survives a handler that throws: the request is answered, the connection and the server go on', async () => {
    const { connect, handlers } = await serve();
    const client = await connect();
    expect(await client.request({ id: 1, type: 'compact', revision: 1 })).toMatchObject({ id: 1, ok: false, error: { code: 'UNAVAILABLE' } });
    expect(handlers.thrown).toBe(1);
    expect(await client.request({ id: 2, type: 'status' })).toMatchObject({ id: 2, ok: true });
  });
});

describe('bounds', () => {
  it('turns a connection past --max-connections away with RESOURCE_EXHAUSTED and close 1013, naming the limit', async () => {
    const { connect, server } = await serve({ connectionsMax: 2 });
    await connect();
    await connect();
    const third = await connect();
    const [frame] = await third.frameCount(1);
    expect(frame).toMatchObject({ id: null, ok: false, error: { code: 'RESOURCE_EXHAUSTED', limit: { name: 'connectionsMax', flag: '--max-connections', value: 2 } } });
    expect(await third.closed).toMatchObject({ code: 1013, reason: expect.stringContaining('--max-connections') });
    expect(server.connections).toBe(2);
  });

  it('refuses requests past --max-in-flight on one connection, and past the member\'s in-flight bytes, naming the limit', async () => {
    const { connect, handlers } = await serve({ inFlightPerConnectionMax: 3, inFlightBytesPerMemberMax: 4_608 });
    const a = await connect();
    for (let i = 1; i <= 4; i++) a.send({ id: i, type: 'watchProgress' });
    const [over] = await a.frameCount(1);
    expect(over).toMatchObject({ id: 4, error: { code: 'RESOURCE_EXHAUSTED', outcome: 'retry', limit: { name: 'inFlightPerConnectionMax' } } });
    // The member now holds 3 requests (at least 1 KiB each); a second from elsewhere passes its 4.5 KiB.
    const b = await connect();
    b.send({ id: 1, type: 'watchProgress' });
    b.send({ id: 2, type: 'watchProgress' });
    const [overMember] = await b.frameCount(1);
    expect(overMember).toMatchObject({ id: 2, error: { code: 'RESOURCE_EXHAUSTED', limit: { name: 'inFlightBytesPerMemberMax' } } });
    for (const release of handlers.held.splice(0)) release();
    expect(await b.request({ id: 3, type: 'status' })).toMatchObject({ ok: true });
  });

  it('closes a connection whose frame passes --max-frame-bytes with 1009 and a reason naming the limit', async () => {
    const { connect } = await serve({ frameBytesMax: 2_000, valueBytesMax: 100, pathBytesMax: 100 });
    const client = await connect();
    client.send({ id: 1, type: 'status', pad: 'x'.repeat(3_000) });
    expect(await client.closed).toMatchObject({ code: 1009, reason: expect.stringContaining('--max-frame-bytes 2000') });
  });

  it('closes the connection holding the most unread answers once the member\'s total passes its bound, and serves a reader', async () => {
    const { connect } = await serve({ unreadBytesPerConnectionMax: 64 * 1024 * 1024, unreadBytesPerMemberMax: 4 * 1024 * 1024 });
    const hog = await connect();
    const reader = await connect();
    (hog.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // 200 answers of 100 KB each: 20 MB that the hog does not read.
    for (let i = 0; i < 200; i++) hog.send({ id: i, type: 'get', path: '/x', revision: 100_000 });
    expect(await reader.request({ id: 1, type: 'status' })).toMatchObject({ ok: true });
    (hog.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    // Dropped, not sent a close: its reason would sit behind megabytes it does not read.
    expect(await hog.closed).toMatchObject({ code: 1006 });
    expect(await reader.request({ id: 2, type: 'status' })).toMatchObject({ ok: true });
  });
});

describe('fairness', () => {
  it('answers a client in its turn while another\'s 400 answers wait for answer room, not behind them all', async () => {
    // Two answers of ~2 KB fill a turn's budget: the flood's 400 answers take ~200 turns.
    const { connect } = await serve({ turnAnswerBytesMax: 4 * 1024 });
    const flood = await connect();
    const other = await connect();
    for (let i = 0; i < 400; i++) flood.send({ id: i, type: 'get', path: '/x', revision: 2_000 });
    await flood.frameCount(1); // the flood is being answered, the rest waiting for room
    const answer = await other.request({ id: 'probe', type: 'status' });
    expect(answer).toMatchObject({ id: 'probe', ok: true });
    // Served in the first round with room after it arrived (behind every waiting answer, it
    // would come after all 400 of the flood's).
    expect(flood.frames.length).toBeLessThan(100);
    expect((await flood.frameCount(400)).length).toBe(400);
  });

  it('answers every one of 3,000 refused frames while answer room is scarce (reads pause past 1,024 waiting, then resume)', async () => {
    const { connect } = await serve({ turnAnswerBytesMax: 4 * 1024 });
    const flood = await connect();
    const junk = await connect();
    for (let i = 0; i < 400; i++) flood.send({ id: i, type: 'get', path: '/x', revision: 2_000 });
    await flood.frameCount(1);
    // 3 MB of junk: read in many chunks, so reads pause part way and must resume.
    for (let i = 0; i < 3_000; i++) junk.send(`not json ${'x'.repeat(1_000)}`);
    const refused = await junk.frameCount(3_000);
    expect(refused.every((f) => (f['error'] as { code?: string } | undefined)?.code === 'INVALID_ARGUMENT')).toBe(true);
    expect((await flood.frameCount(400)).length).toBe(400);
  });
});

describe('an answer that cannot be sent', () => {
  it('closes its connection with a reason (its client is not left waiting on the id), and the member serves others', async () => {
    const { connect } = await serve();
    const broken = await connect();
    const other = await connect();
    broken.send({ id: 1, type: 'leaseList' });
    const closed = await Promise.race([broken.closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 5_000))]);
    expect(closed).toMatchObject({ code: 1008, reason: expect.stringMatching(/could not send an answer/) });
    expect(await other.request({ id: 2, type: 'status' })).toMatchObject({ ok: true });
  });
});
