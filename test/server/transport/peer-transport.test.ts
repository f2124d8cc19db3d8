/**
 * The peer transport over real `ws` servers on 127.0.0.1 (free ports, one process): Raft
 * messages both ways and client URLs learnt from the hellos; a dialler that takes a channel for
 * live only once the peer has said who it is (and dials again when nobody answers); sockets that
 * do not introduce themselves as members closed with 1008 and never heard; forwarded writes
 * answered by id, with the leader's refusal (code and hint) carried back; snapshot streams
 * delivered whole and in order, failed when the channel closes or a newer snapshot replaces
 * them; and the receiving socket paused while the store falls behind, resumed once it catches up.
 *
 * Must never: sleep; wait without a bound; leave a transport, a socket or a server open
 * (afterEach closes them).
 */

import type { LeaseRequest } from '../../../server/node/runtime.js';
import type { LeaseStatus } from '../../../server/node/lease-keeper.js';
import { encode } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { HeartbeatMessage, Message, NodeId, SnapshotMessage } from '../../../server/raft/types.js';
import type { StateResult } from '../../../server/state/state-machine.js';
import { RequestError } from '../../../server/node/waiting-list.js';
import { PeerTransport } from '../../../server/transport/peer-transport.js';

/** The bound on any one wait: generous for a loaded machine, yet far below the test timeout. */
const BOUND_MS = 5_000;

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What arrived so far, and a bounded wait for what is still to come. */
class Feed<T> {
  readonly items: T[] = [];
  private waiters: { readonly done: (items: readonly T[]) => boolean; readonly resolve: () => void }[] = [];

  push(item: T): void {
    this.items.push(item);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.done(this.items)) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves once `done` holds of what arrived (at once if it already does). */
  until(done: (items: readonly T[]) => boolean, what: string, ms = BOUND_MS): Promise<void> {
    if (done(this.items)) return Promise.resolve();
    return within(new Promise<void>((resolve) => this.waiters.push({ done, resolve })), ms, what);
  }

  /** The first item, arrived or still to come, that passes `test`. */
  async find(test: (item: T) => boolean, what: string, ms = BOUND_MS): Promise<T> {
    await this.until((items) => items.some(test), what, ms);
    return this.items.find(test)!;
  }
}

interface LogEvent {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
}

interface ArrivingSnapshot {
  readonly message: SnapshotMessage;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/** One member's side: its peer server, its transport (once built), and what its handlers saw. */
interface Member {
  readonly name: NodeId;
  readonly server: WebSocketServer;
  readonly url: string;
  transport: PeerTransport | null;
  readonly log: Feed<LogEvent>;
  readonly messages: Feed<Message>;
  readonly snapshots: Feed<ArrivingSnapshot>;
  onForward: (entry: Uint8Array) => Promise<StateResult>;
  onLeaseRequest: (request: LeaseRequest) => LeaseStatus[];
}

const servers: WebSocketServer[] = [];
const transports: PeerTransport[] = [];
const rawSockets: WebSocket[] = [];

afterEach(async () => {
  for (const transport of transports.splice(0)) transport.close();
  for (const socket of rawSockets.splice(0)) socket.terminate();
  await Promise.all(
    servers.splice(0).map(async (server) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // ws leaves accepted connections open on close(): end them, or the HTTP server never closes.
      for (const client of server.clients) client.terminate();
      await within(closed, BOUND_MS, 'a peer server closing');
    }),
  );
});

async function listen(): Promise<WebSocketServer> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  servers.push(server);
  await within(
    new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    }),
    BOUND_MS,
    'a peer server listening',
  );
  return server;
}

function urlOf(server: WebSocketServer): string {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the server has no port');
  return `ws://127.0.0.1:${address.port}`;
}

/** A URL where nothing listens (a member that is down): a port that was free a moment ago. */
async function downUrl(): Promise<string> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await within(new Promise<void>((resolve) => server.once('listening', resolve)), BOUND_MS, 'a throwaway server listening');
  const url = urlOf(server);
  await within(new Promise<void>((resolve) => server.close(() => resolve())), BOUND_MS, 'a throwaway server closing');
  return url;
}

async function member(name: NodeId): Promise<Member> {
  const server = await listen();
  return {
    name,
    server,
    url: urlOf(server),
    transport: null,
    log: new Feed<LogEvent>(),
    messages: new Feed<Message>(),
    snapshots: new Feed<ArrivingSnapshot>(),
    onForward: () => Promise.reject(new Error('no forward expected')),
    onLeaseRequest: () => {
      throw new Error('no lease request expected');
    },
  };
}

const clientUrlOf = (name: NodeId): string => `ws://127.0.0.1/${name}-client`;

/** Build `m`'s transport on its server (it answers hellos from now on), with a recording logger. */
function build(m: Member, peers: ReadonlyMap<NodeId, string>, options: { helloTimeoutMs?: number; handshakeTimeoutMs?: number; clusterId?: string } = {}): PeerTransport {
  const record =
    (level: LogEvent['level']) =>
    (fields: Record<string, unknown>): void =>
      m.log.push({ level, fields });
  const transport = new PeerTransport(
    { id: m.name, peers, clientUrl: 'ws://127.0.0.1:1/not-yet', logger: { info: record('info'), warn: record('warn'), error: record('error') }, ...options },
    m.server,
  );
  transports.push(transport);
  m.transport = transport;
  return transport;
}

function start(m: Member): void {
  const transport = m.transport!;
  transport.setClientUrl(clientUrlOf(m.name));
  transport.start({
    onMessage: (message) => m.messages.push(message),
    onForward: (entry) => m.onForward(entry),
    onLeaseRequest: async (request) => m.onLeaseRequest(request),
    onSnapshot: (message, chunks) => m.snapshots.push({ message, chunks }),
  });
}

const peersOf = (...members: readonly Member[]): Map<NodeId, string> => new Map(members.map((m) => [m.name, m.url]));

/** Whether `m` logged `event` about `peer` (arrived or still to come). */
function logged(m: Member, event: string, peer: NodeId, what = `${m.name} logging ${event} for ${peer}`): Promise<LogEvent> {
  return m.log.find((e) => e.fields['event'] === event && e.fields['peer'] === peer, what);
}

/** a and b, both built and started; resolves once a has heard b's hello (so both hold the channel). */
async function connectedPair(extra: readonly { name: NodeId; url: string }[] = []): Promise<{ a: Member; b: Member }> {
  const a = await member('a');
  const b = await member('b');
  const peers = peersOf(a, b);
  for (const { name, url } of extra) peers.set(name, url);
  build(a, peers);
  build(b, peers);
  start(b);
  start(a);
  await logged(a, 'peer_connected', 'b', 'a channel between a and b');
  return { a, b };
}

const heartbeat = (from: NodeId, to: NodeId, commit: number, term = 1): HeartbeatMessage => ({ type: 'Heartbeat', from, to, term, commit, readRound: null });

function snapshotMessage(index: number, term = 2): SnapshotMessage {
  return { type: 'Snapshot', from: 'a', to: 'b', term: term + 1, snapshot: { meta: { index, term, conf: { voters: ['a', 'b'] } }, data: null } };
}

/** `count` chunks of 64 KiB, each distinct: its stream and index in the first bytes, then a fill. */
function makeChunks(count: number, stream = 1): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => {
    const chunk = new Uint8Array(64 * 1024).fill((stream * 31 + i * 7) & 0xff);
    new DataView(chunk.buffer).setUint32(0, stream);
    new DataView(chunk.buffer).setUint32(4, i);
    return chunk;
  });
}

const same = (got: Uint8Array, want: Uint8Array): boolean => Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want);

/**
 * A snapshot's chunks handed out only as far as the test allows, with a signal once each has
 * been written (the sender asks for the next chunk only after the one before reached its socket).
 */
function pacedChunks(chunks: readonly Uint8Array[]): { iterable: AsyncIterable<Uint8Array>; allow(count: number): void; written(index: number): Promise<void> } {
  let allowed = 0;
  let wake: (() => void) | null = null;
  const written = chunks.map(() => deferred<void>());
  async function* generate(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < chunks.length; i++) {
      while (i >= allowed) await new Promise<void>((resolve) => (wake = resolve));
      yield chunks[i]!;
      written[i]!.resolve();
    }
  }
  return {
    iterable: generate(),
    allow(count) {
      allowed = count;
      const w = wake;
      wake = null;
      w?.();
    },
    written: (index) => within(written[index]!.promise, BOUND_MS, `chunk ${index} written`),
  };
}

/** Read a snapshot's chunks into a feed; settles with how the iterable finished. */
function consume(chunks: AsyncIterable<Uint8Array>, into: Feed<Uint8Array>): Promise<'ended'> {
  return (async () => {
    for await (const chunk of chunks) into.push(chunk);
    return 'ended' as const;
  })();
}

function rawClient(url: string): { socket: WebSocket; opened: Promise<void>; closed: Promise<number> } {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  rawSockets.push(socket);
  socket.on('error', () => undefined);
  return {
    socket,
    opened: within(new Promise<void>((resolve) => socket.once('open', () => resolve())), BOUND_MS, 'a raw client connecting'),
    closed: new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code))),
  };
}

describe('PeerTransport: Raft messages and hellos', () => {
  it('carries Raft messages both ways and tells each side the other one’s client URL', async () => {
    const { a, b } = await connectedPair();
    const append: Message = {
      type: 'Append',
      from: 'a',
      to: 'b',
      term: 2,
      prevLogIndex: 4,
      prevLogTerm: 1,
      entries: [{ index: 5, term: 2, type: 'normal', data: new Uint8Array([1, 2, 3, 250]) }],
      commit: 4,
    };
    a.transport!.send(heartbeat('a', 'b', 0));
    a.transport!.send(append);
    b.transport!.send({ type: 'HeartbeatResp', from: 'b', to: 'a', term: 1, readRound: null });

    await b.messages.until((items) => items.length === 2, 'both messages from a at b');
    expect(b.messages.items).toEqual([heartbeat('a', 'b', 0), append]);
    // Entry bytes arrive as plain Uint8Arrays, never as Buffers (whose slice() is a view).
    const arrived = b.messages.items[1];
    if (arrived?.type !== 'Append') throw new Error('expected the Append second');
    expect(Buffer.isBuffer(arrived.entries[0]!.data)).toBe(false);
    expect([...arrived.entries[0]!.data]).toEqual([1, 2, 3, 250]);

    await a.messages.until((items) => items.length === 1, 'the message from b at a');
    expect(a.messages.items).toEqual([{ type: 'HeartbeatResp', from: 'b', to: 'a', term: 1, readRound: null }]);

    expect(a.transport!.clientUrlOf('b')).toBe(clientUrlOf('b'));
    expect(b.transport!.clientUrlOf('a')).toBe(clientUrlOf('a'));
    expect(a.transport!.clientUrlOf('a')).toBe(clientUrlOf('a'));
    expect(a.transport!.clientUrlOf('nobody')).toBeNull();
  });

  it('does not take an unanswered dial for a live channel: it dials again, and talks once the peer’s transport is up', async () => {
    // Regression: b's peer port listens while b's storage opens, with no transport to answer
    // a's hello. a used to adopt that socket on 'open' and send into it for ever.
    const a = await member('a');
    const b = await member('b');
    const peers = peersOf(a, b);
    const firstArrival = within(
      new Promise<WebSocket>((resolve) => b.server.once('connection', (socket: WebSocket) => resolve(socket))),
      BOUND_MS,
      "a's first dial reaching b's server",
    );
    build(a, peers, { helloTimeoutMs: 200 });
    start(a);
    const unanswered = await firstArrival;
    const unansweredClosed = new Promise<void>((resolve) => unanswered.once('close', () => resolve()));

    build(b, peers);
    start(b);

    // a treats the channel as live only after b's hello: then a message must arrive.
    await logged(a, 'peer_connected', 'b', 'a taking a channel to b for live');
    a.transport!.send(heartbeat('a', 'b', 7));
    await b.messages.find((m) => m.type === 'Heartbeat' && m.commit === 7, 'the heartbeat from a at b');
    b.transport!.send({ type: 'HeartbeatResp', from: 'b', to: 'a', term: 1, readRound: null });
    await a.messages.find((m) => m.type === 'HeartbeatResp', 'the answer from b at a');

    const timeout = await logged(a, 'peer_hello_timeout', 'b');
    expect(timeout.level).toBe('warn');
    // a gave up the half-open socket rather than leaving it open beside the live one.
    await within(unansweredClosed, BOUND_MS, 'the unanswered socket closing');
    expect(a.transport!.clientUrlOf('b')).toBe(clientUrlOf('b'));
  });
});

describe('PeerTransport: sockets that are not members', () => {
  it('closes with 1008, and never delivers from, a socket that does not introduce itself as a member', async () => {
    const { a, b } = await connectedPair();
    const attempts: { readonly what: string; readonly frame: Uint8Array }[] = [
      { what: 'a hello from a stranger', frame: encode({ k: 'hello', from: 'mallory', clientUrl: 'ws://evil' }) },
      { what: 'a hello claiming b’s own name', frame: encode({ k: 'hello', from: 'b', clientUrl: 'ws://evil' }) },
      { what: 'garbage', frame: new Uint8Array([0xc1, 0xff, 0x00, 0x13]) },
      // A Raft frame with no hello first, as if from a: it must never reach the core.
      { what: 'a Raft frame before any hello', frame: encode({ k: 'raft', m: heartbeat('a', 'b', 666, 666) }) },
    ];
    for (const { what, frame } of attempts) {
      const raw = rawClient(b.url);
      await raw.opened;
      raw.socket.send(frame);
      // Closed in answer to that frame: by then b has handled it.
      expect(await within(raw.closed, BOUND_MS, `b closing after ${what}`), what).toBe(1008);
    }
    const refused = b.log.items.filter((e) => e.fields['event'] === 'peer_refused');
    expect(refused).toHaveLength(attempts.length);
    expect(b.messages.items.some((m) => m.term === 666)).toBe(false);
    expect(b.transport!.clientUrlOf('mallory')).toBeNull();

    // A message on the member's channel that claims another sender is not delivered either.
    a.transport!.send(heartbeat('mallory', 'b', 665, 665));
    // The real members keep talking (and, in order on a's channel, the spoofed one was handled first).
    a.transport!.send(heartbeat('a', 'b', 3));
    b.transport!.send({ type: 'HeartbeatResp', from: 'b', to: 'a', term: 1, readRound: null });
    await b.messages.find((m) => m.type === 'Heartbeat' && m.commit === 3, 'the heartbeat from a at b');
    await a.messages.find((m) => m.type === 'HeartbeatResp', 'the answer from b at a');
    expect(b.messages.items.map((m) => m.from)).toEqual(['a']);
  });

  it('drops a connection that never says hello after the hello timeout, and refuses more than 64 waiting at once (1013)', async () => {
    const a = await member('a');
    const b = await member('b');
    build(b, peersOf(a, b), { helloTimeoutMs: 300 });
    start(b);
    const silent = rawClient(b.url);
    await silent.opened;
    // Closed by b without a word from it: the hello timeout ran out.
    expect(await within(silent.closed, BOUND_MS, 'b dropping a silent connection')).toBe(1006);
    const crowd = Array.from({ length: 70 }, () => rawClient(b.url));
    const codes = await within(Promise.all(crowd.map((c) => c.closed)), BOUND_MS, 'the crowd closed');
    expect(codes.filter((code) => code === 1013).length).toBeGreaterThanOrEqual(6);
    expect(b.log.items.some((e) => e.fields['reason'] === 'awaiting_hello')).toBe(true);
  });

  it('a dialler closes with 1008 a peer that answers as somebody else, and never takes it for live', async () => {
    const a = await member('a');
    const impostor = await listen();
    const closes = new Feed<number>();
    impostor.on('connection', (socket: WebSocket) => {
      socket.once('message', () => socket.send(encode({ k: 'hello', from: 'mallory', clientUrl: 'ws://evil' })));
      socket.on('close', (code: number) => closes.push(code));
    });
    build(a, new Map([['a', a.url], ['b', urlOf(impostor)]]));
    start(a);
    await closes.until((items) => items.length >= 1, 'a closing the impostor’s socket');
    expect(closes.items[0]).toBe(1008);
    expect(a.log.items.some((e) => e.fields['event'] === 'peer_connected')).toBe(false);
    expect(a.transport!.clientUrlOf('b')).toBeNull();
  });
});

describe('PeerTransport: configuration changes', () => {
  it('dials a member added to the configuration, and drops — never redials, refuses — one removed', async () => {
    const { a, b } = await connectedPair();
    const c = await member('c');
    const all = peersOf(a, b, c);
    build(c, all);
    start(c);
    a.transport!.setPeers(all);
    b.transport!.setPeers(all);
    await logged(a, 'peer_connected', 'c', 'a dialling the added c');
    a.transport!.send(heartbeat('a', 'c', 7));
    await c.messages.find((m) => m.type === 'Heartbeat' && m.from === 'a' && m.commit === 7, 'a heartbeat from a at c');

    // b removed: a closes their channel and does not dial b again.
    a.transport!.setPeers(peersOf(a, c));
    await logged(a, 'peer_removed', 'b');
    await logged(b, 'peer_disconnected', 'a', 'b losing a');
    // b saying hello to a now is a stranger's hello.
    const raw = rawClient(a.url);
    await raw.opened;
    raw.socket.send(encode({ k: 'hello', from: 'b', clientUrl: 'ws://b' }));
    expect(await within(raw.closed, BOUND_MS, 'a refusing b')).toBe(1008);
    a.transport!.send(heartbeat('a', 'b', 9));
    a.transport!.send(heartbeat('a', 'c', 10));
    await c.messages.find((m) => m.type === 'Heartbeat' && m.commit === 10, 'a still talking to c');
    expect(b.messages.items.some((m) => m.type === 'Heartbeat' && m.commit === 9)).toBe(false);
    expect(a.log.items.filter((e) => e.fields['event'] === 'peer_connected' && e.fields['peer'] === 'b')).toHaveLength(1);
  });
});

describe('PeerTransport: cluster identity', () => {
  it('refuses, both ways and with 1008, a peer that says another cluster: no channel, no message, an error logged', async () => {
    const a = await member('a');
    const b = await member('b');
    const peers = new Map([['a', a.url], ['b', b.url]]);
    build(a, peers, { clusterId: '1111111111111111', helloTimeoutMs: 500 });
    build(b, peers, { clusterId: '2222222222222222', helloTimeoutMs: 500 });
    start(a);
    start(b);
    // a dials b: b refuses the hello, and a learns why from the close.
    expect((await logged(b, 'peer_other_cluster', 'a')).fields).toMatchObject({ ours: '2222222222222222', theirs: '1111111111111111' });
    expect((await logged(a, 'peer_other_cluster', 'b')).fields).toMatchObject({ ours: '1111111111111111', theirs: '2222222222222222' });
    a.transport!.send(heartbeat('a', 'b', 0));
    b.transport!.send(heartbeat('b', 'a', 0));
    expect([...a.log.items, ...b.log.items].some((e) => e.fields['event'] === 'peer_connected')).toBe(false);
    expect(a.messages.items).toEqual([]);
    expect(b.messages.items).toEqual([]);
  });

  it('connects peers that say the same cluster', async () => {
    const a = await member('a');
    const b = await member('b');
    const peers = new Map([['a', a.url], ['b', b.url]]);
    build(a, peers, { clusterId: '3333333333333333' });
    build(b, peers, { clusterId: '3333333333333333' });
    start(b);
    start(a);
    await logged(a, 'peer_connected', 'b');
    a.transport!.send(heartbeat('a', 'b', 0));
    await b.messages.until((items) => items.length >= 1, 'the heartbeat at b');
  });
});

describe('PeerTransport: forwarded writes', () => {
  it('answers each forwarded write with the leader’s result, many in flight, matched by id', async () => {
    const { a, b } = await connectedPair();
    const arrived = new Feed<{ entry: Uint8Array; answer: Deferred<StateResult> }>();
    b.onForward = (entry) => {
      const answer = deferred<StateResult>();
      arrived.push({ entry, answer });
      return answer.promise;
    };
    const results = [1, 2, 3].map((n) => a.transport!.forward('b', new Uint8Array([n, n, n])));
    await arrived.until((items) => items.length === 3, 'three forwarded writes at b');
    expect(arrived.items.map(({ entry }) => [...entry])).toEqual([
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ]);
    // Answered out of order: each caller still gets its own write's result.
    for (const { entry, answer } of [...arrived.items].reverse()) answer.resolve({ ok: true, revision: 10 + entry[0]!, op: 'delete', deleted: entry[0]! });
    const answers = await within(Promise.all(results), BOUND_MS, 'the forwarded writes answered');
    expect(answers).toEqual([1, 2, 3].map((n) => ({ ok: true, revision: 10 + n, op: 'delete', deleted: n })));
  });

  it('carries the leader’s refusal back as a RequestError with its code and hint; fails promptly for a member that is down', async () => {
    const { a, b } = await connectedPair([{ name: 'c', url: await downUrl() }]);
    b.onForward = () => Promise.reject(new RequestError('NOT_LEADER', 'b is not the leader', 'c'));
    const refused = await within(a.transport!.forward('b', new Uint8Array([9])).catch((e: unknown) => e), BOUND_MS, 'the refused forward');
    expect(refused).toBeInstanceOf(RequestError);
    expect(refused).toMatchObject({ code: 'NOT_LEADER', leaderHint: 'c', message: 'b is not the leader' });

    // Any other failure at the leader may have come after it proposed the write: OUTCOME_UNKNOWN, with no hint.
    b.onForward = () => Promise.reject(new Error('the store failed'));
    const failed = await within(a.transport!.forward('b', new Uint8Array([9])).catch((e: unknown) => e), BOUND_MS, 'the failed forward');
    expect(failed).toBeInstanceOf(RequestError);
    expect(failed).toMatchObject({ code: 'OUTCOME_UNKNOWN', leaderHint: null, message: 'the store failed' });

    // c is down: no waiting for the forward timeout (10 s).
    const down = await within(a.transport!.forward('c', new Uint8Array([9])).catch((e: unknown) => e), 500, 'the forward to a member that is down');
    expect(down).toBeInstanceOf(RequestError);
    expect(down).toMatchObject({ code: 'UNAVAILABLE', leaderHint: 'c' });

    // b goes down: once a has seen the channel close, a forward to it fails at once too.
    b.transport!.close();
    await logged(a, 'peer_disconnected', 'b');
    const gone = await within(a.transport!.forward('b', new Uint8Array([9])).catch((e: unknown) => e), 500, 'the forward to a member that left');
    expect(gone).toMatchObject({ code: 'UNAVAILABLE', leaderHint: 'b' });
  });
});

describe('PeerTransport: malformed frames from a member', () => {
  // Found in review: frames are checked only by their kind; one without its body threw inside
  // the socket's message handler — an uncaught exception, the whole member gone.
  it('logs and drops a member\'s frame it cannot handle, and keeps serving', async () => {
    const a = await member('a');
    const b = await member('b');
    build(b, peersOf(a, b));
    start(b);
    const raw = rawClient(b.url);
    await raw.opened;
    raw.socket.send(encode({ k: 'hello', from: 'a', clientUrl: 'ws://a' }));
    await logged(b, 'peer_connected', 'a');
    raw.socket.send(encode({ k: 'raft' }));
    raw.socket.send(encode({ k: 'snap', id: 1 }));
    // Shaped like frames, wrong inside: each would have reached the core through a cast.
    raw.socket.send(encode({ k: 'raft', m: { ...heartbeat('a', 'b', 5), term: -1 } }));
    raw.socket.send(encode({ k: 'raft', m: { type: 'Append', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, commit: 0, entries: [{ index: 1, term: 1, type: 'normal', data: 'not bytes' }] } }));
    raw.socket.send(encode({ k: 'raft', m: { ...heartbeat('a', 'b', 6), type: 'Nonsense' } }));
    raw.socket.send(encode({ k: 'raft', m: heartbeat('a', 'b', 7) }));
    await b.messages.find((m) => m.type === 'Heartbeat' && m.commit === 7, 'the well-formed heartbeat after the bad frames');
    expect(b.messages.items).toEqual([heartbeat('a', 'b', 7)]);
    // Logged, but once a minute per peer: a broken peer cannot flood the log.
    expect(b.log.items.filter((e) => e.fields['event'] === 'peer_frame_invalid' && e.fields['peer'] === 'a').length).toBe(1);
  });
});

describe('PeerTransport: lease requests', () => {
  it('carries a follower\'s lease request to the leader and its answers back; a refusal comes back as a RequestError', async () => {
    const { a, b } = await connectedPair();
    const asked: LeaseRequest[] = [];
    b.onLeaseRequest = (request) => {
      asked.push(request);
      return request.op === 'keepAlive' ? request.leases.map((id) => ({ id, ok: true, ttlMs: 5_000, remainingMs: 5_000 })) : [{ id: request.lease, ok: false, code: 'LEASE_NOT_FOUND', message: 'gone' }];
    };
    const answers = await within(a.transport!.leaseRequest('b', { op: 'keepAlive', leases: [3, 4] }), BOUND_MS, 'the keep-alive answers');
    expect(answers).toEqual([
      { id: 3, ok: true, ttlMs: 5_000, remainingMs: 5_000 },
      { id: 4, ok: true, ttlMs: 5_000, remainingMs: 5_000 },
    ]);
    expect(await within(a.transport!.leaseRequest('b', { op: 'timeToLive', lease: 9 }), BOUND_MS, 'the ttl answer')).toEqual([{ id: 9, ok: false, code: 'LEASE_NOT_FOUND', message: 'gone' }]);
    expect(asked).toEqual([{ op: 'keepAlive', leases: [3, 4] }, { op: 'timeToLive', lease: 9 }]);
    b.onLeaseRequest = () => {
      throw new RequestError('NOT_LEADER', 'b does not lead', 'c');
    };
    const refused = await within(a.transport!.leaseRequest('b', { op: 'keepAlive', leases: [1] }).catch((e: unknown) => e), BOUND_MS, 'the refusal');
    expect(refused).toBeInstanceOf(RequestError);
    expect(refused).toMatchObject({ code: 'NOT_LEADER', leaderHint: 'c' });
  });
});

describe('PeerTransport: channels that close', () => {
  it('fails a forwarded write at once when its channel closes before the answer, not at the forward timeout, as OUTCOME_UNKNOWN (the leader had it)', async () => {
    const { a, b } = await connectedPair();
    const arrived = new Feed<Uint8Array>();
    b.onForward = (entry) => {
      arrived.push(entry);
      return new Promise<StateResult>(() => undefined); // the leader never answers: it is going away
    };
    const pending = a.transport!.forward('b', new Uint8Array([7])).catch((e: unknown) => e);
    await arrived.until((items) => items.length === 1, 'the forwarded write at b');
    b.transport!.close();
    const failed = await within(pending, 1_000, 'the forward failed when its channel closed');
    expect(failed).toBeInstanceOf(RequestError);
    expect(failed).toMatchObject({ code: 'OUTCOME_UNKNOWN', leaderHint: 'b' });
  });

  it('a closed transport takes no new channel: a socket dialling it is turned away (1001), never left open unread', async () => {
    const a = await member('a');
    const b = await member('b');
    const peers = peersOf(a, b);
    build(b, peers);
    start(b);
    b.transport!.close();
    const raw = rawClient(b.url);
    await raw.opened.catch(() => undefined);
    const code = await within(raw.closed, BOUND_MS, 'the closed transport turning a socket away');
    expect(code).toBe(1001);
    expect(b.log.items.some((e) => e.fields['event'] === 'peer_connected')).toBe(false);
  });
});

describe('PeerTransport: snapshot streams', () => {
  it('delivers the message and then exactly the chunks, in order, and ends; Raft messages interleave', async () => {
    const { a, b } = await connectedPair();
    const chunks = makeChunks(20);
    const paced = pacedChunks(chunks);
    const message = snapshotMessage(40);
    const sent = a.transport!.sendSnapshot(message, paced.iterable);

    paced.allow(10);
    await paced.written(9);
    a.transport!.send(heartbeat('a', 'b', 11)); // between chunks 10 and 11 on the wire
    paced.allow(20);

    const arriving = await b.snapshots.find(() => true, 'the snapshot at b');
    expect(arriving.message).toEqual(message);
    const got = new Feed<Uint8Array>();
    const messagesSeenAt: number[] = [];
    const ended = within(
      (async () => {
        for await (const chunk of arriving.chunks) {
          messagesSeenAt.push(b.messages.items.length);
          got.push(chunk);
        }
      })(),
      BOUND_MS,
      'the chunk stream at b ending',
    );
    await ended;
    await within(sent, BOUND_MS, 'sendSnapshot resolving');

    expect(got.items).toHaveLength(chunks.length);
    got.items.forEach((chunk, i) => expect(same(chunk, chunks[i]!), `chunk ${i}`).toBe(true));
    // The heartbeat sent mid-stream arrived, before the chunks written after it.
    expect(b.messages.items).toEqual([heartbeat('a', 'b', 11)]);
    expect(messagesSeenAt[10]).toBe(1);
    expect(b.snapshots.items).toHaveLength(1);
  });

  it('a socket lost mid-stream fails the receiver’s chunks and the sender’s sendSnapshot; the pair then reconnects', async () => {
    const { a, b } = await connectedPair();
    const chunks = makeChunks(10);
    const paced = pacedChunks(chunks);
    const sent = a.transport!.sendSnapshot(snapshotMessage(40), paced.iterable);
    const sentSettled = sent.catch((e: unknown) => e);
    paced.allow(5);
    const arriving = await b.snapshots.find(() => true, 'the snapshot at b');
    const got = new Feed<Uint8Array>();
    const consumed = consume(arriving.chunks, got).catch((e: unknown) => e);
    await got.until((items) => items.length === 5, 'five chunks at b');

    const channel = [...b.server.clients];
    expect(channel).toHaveLength(1);
    const disconnectsBefore = a.log.items.filter((e) => e.fields['event'] === 'peer_disconnected').length;
    channel[0]!.terminate();

    const receiverError = await within(consumed, BOUND_MS, 'the chunk stream at b failing');
    expect(receiverError).toBeInstanceOf(Error);
    expect((receiverError as Error).message).toMatch(/the connection to a closed during a snapshot/);

    await a.log.until((items) => items.filter((e) => e.fields['event'] === 'peer_disconnected').length > disconnectsBefore, 'a seeing the channel close');
    paced.allow(10);
    const senderError = await within(sentSettled, BOUND_MS, 'sendSnapshot settling');
    expect(senderError).toBeInstanceOf(Error);
    expect((senderError as Error).message).toMatch(/the channel to b closed during the snapshot/);
    expect(got.items).toHaveLength(5);

    // a dials again: the pair talks on the new channel.
    await a.log.until((items) => items.filter((e) => e.fields['event'] === 'peer_connected' && e.fields['peer'] === 'b').length === 2, 'a reconnecting to b');
    a.transport!.send(heartbeat('a', 'b', 21));
    await b.messages.find((m) => m.type === 'Heartbeat' && m.commit === 21, 'a heartbeat on the new channel');

    // With no channel at all, sendSnapshot refuses at once.
    b.transport!.close();
    await a.log.until((items) => items.filter((e) => e.fields['event'] === 'peer_disconnected').length > disconnectsBefore + 1, 'a seeing b stop');
    await expect(a.transport!.sendSnapshot(snapshotMessage(41), pacedChunks([]).iterable)).rejects.toThrow(/b is unreachable/);
  });

  it('the receiver stopping mid-stream fails its chunks, and the sender’s sendSnapshot', async () => {
    const { a, b } = await connectedPair();
    const paced = pacedChunks(makeChunks(10));
    const sentSettled = a.transport!.sendSnapshot(snapshotMessage(40), paced.iterable).catch((e: unknown) => e);
    paced.allow(3);
    const arriving = await b.snapshots.find(() => true, 'the snapshot at b');
    const got = new Feed<Uint8Array>();
    const consumed = consume(arriving.chunks, got).catch((e: unknown) => e);
    await got.until((items) => items.length === 3, 'three chunks at b');

    b.transport!.close();
    const receiverError = await within(consumed, BOUND_MS, 'the chunk stream at b failing');
    expect((receiverError as Error).message).toMatch(/the member is stopping/);

    await logged(a, 'peer_disconnected', 'b');
    paced.allow(10);
    const senderError = await within(sentSettled, BOUND_MS, 'sendSnapshot settling');
    expect((senderError as Error).message).toMatch(/the channel to b closed during the snapshot/);
  });

  it('a newer snapshot from the same peer fails the one still arriving, and none of the old one’s chunks leak into it', async () => {
    const { a, b } = await connectedPair();
    const first = makeChunks(4, 1);
    const second = makeChunks(3, 2);
    const pacedFirst = pacedChunks(first);
    const pacedSecond = pacedChunks(second);

    const firstSent = a.transport!.sendSnapshot(snapshotMessage(40), pacedFirst.iterable);
    pacedFirst.allow(2);
    const firstArriving = await b.snapshots.find(() => true, 'the first snapshot at b');
    const gotFirst = new Feed<Uint8Array>();
    const firstConsumed = consume(firstArriving.chunks, gotFirst).catch((e: unknown) => e);
    await gotFirst.until((items) => items.length === 2, 'two chunks of the first snapshot at b');

    const secondSent = a.transport!.sendSnapshot(snapshotMessage(80, 3), pacedSecond.iterable);
    pacedSecond.allow(1);
    const firstError = await within(firstConsumed, BOUND_MS, 'the first snapshot failing');
    expect(firstError).toBeInstanceOf(Error);
    expect((firstError as Error).message).toMatch(/a newer snapshot replaced it/);

    await b.snapshots.until((items) => items.length === 2, 'the second snapshot at b');
    const secondArriving = b.snapshots.items[1]!;
    expect(secondArriving.message).toEqual(snapshotMessage(80, 3));
    const gotSecond = new Feed<Uint8Array>();
    const secondConsumed = consume(secondArriving.chunks, gotSecond);
    await gotSecond.until((items) => items.length === 1, 'the first chunk of the second snapshot at b');

    // The old stream's remaining chunks and its end go out now (its sender does not know it was replaced)...
    pacedFirst.allow(4);
    await within(firstSent, BOUND_MS, 'the first sendSnapshot resolving');
    // ...and a heartbeat after them, on the same channel, proves b has handled them.
    a.transport!.send(heartbeat('a', 'b', 5));
    await b.messages.find((m) => m.type === 'Heartbeat' && m.commit === 5, 'the heartbeat after the old stream');

    pacedSecond.allow(3);
    await within(secondSent, BOUND_MS, 'the second sendSnapshot resolving');
    expect(await within(secondConsumed, BOUND_MS, 'the second snapshot ending')).toBe('ended');
    expect(gotFirst.items).toHaveLength(2);
    expect(gotSecond.items).toHaveLength(second.length);
    gotSecond.items.forEach((chunk, i) => expect(same(chunk, second[i]!), `chunk ${i} of the second snapshot`).toBe(true));
  });
});

describe('PeerTransport: back-pressure on an arriving snapshot', () => {
  it('pauses the peer’s socket once 8 chunks wait unread, resumes it when fewer than 4 do, and the stream completes', async () => {
    const { a, b } = await connectedPair();
    const channel = [...b.server.clients];
    expect(channel).toHaveLength(1);
    const socket = channel[0]!;
    // Watch the socket b's transport holds (the one b's server accepted from a) pause and resume.
    let pauses = 0;
    let resumes = 0;
    const firstPause = deferred<void>();
    const pause = socket.pause.bind(socket);
    const resume = socket.resume.bind(socket);
    socket.pause = () => {
      pauses++;
      pause();
      firstPause.resolve();
    };
    socket.resume = () => {
      resumes++;
      resume();
    };

    const chunks = makeChunks(20);
    const paced = pacedChunks(chunks);
    const sent = a.transport!.sendSnapshot(snapshotMessage(40), paced.iterable);
    const arriving = await b.snapshots.find(() => true, 'the snapshot at b');
    const reader = arriving.chunks[Symbol.asyncIterator]();

    // Seven chunks wait unread: each proven handled by b by a heartbeat sent after it. No pause yet.
    for (let i = 0; i < 7; i++) {
      paced.allow(i + 1);
      await paced.written(i);
      a.transport!.send(heartbeat('a', 'b', 100 + i));
      await b.messages.find((m) => m.type === 'Heartbeat' && m.commit === 100 + i, `the heartbeat after chunk ${i}`);
      expect(pauses, `after chunk ${i}`).toBe(0);
    }
    expect(socket.isPaused).toBe(false);

    // The eighth: b stops reading the channel.
    paced.allow(8);
    await within(firstPause.promise, BOUND_MS, 'b pausing the channel at 8 unread chunks');
    expect(socket.isPaused).toBe(true);

    // Reading: still paused while 4 or more wait, resumed as soon as fewer do.
    for (let i = 0; i < 4; i++) {
      const next = await within(reader.next(), BOUND_MS, `reading chunk ${i}`);
      expect(next.done).toBe(false);
      expect(same(next.value as Uint8Array, chunks[i]!)).toBe(true);
      expect(resumes, `after reading chunk ${i}`).toBe(0);
      expect(socket.isPaused).toBe(true);
    }
    const fifth = await within(reader.next(), BOUND_MS, 'reading chunk 4');
    expect(same(fifth.value as Uint8Array, chunks[4]!)).toBe(true);
    expect(resumes).toBe(1);
    expect(socket.isPaused).toBe(false);

    // The rest flows, and the stream completes.
    paced.allow(20);
    for (let i = 5; i < 20; i++) {
      const next = await within(reader.next(), BOUND_MS, `reading chunk ${i}`);
      expect(next.done, `chunk ${i}`).toBe(false);
      expect(same(next.value as Uint8Array, chunks[i]!), `chunk ${i}`).toBe(true);
    }
    expect((await within(reader.next(), BOUND_MS, 'the end of the stream')).done).toBe(true);
    await within(sent, BOUND_MS, 'sendSnapshot resolving');
    expect(socket.isPaused).toBe(false);
  });
});

describe('PeerTransport: dials that hang', () => {
  it('abandons a dial whose upgrade never completes (a blackholed peer) and dials again, rather than wait for TCP', async () => {
    // A peer port that accepts connections and never answers the upgrade.
    const accepted: Socket[] = [];
    const blackhole = createNetServer((socket) => accepted.push(socket));
    await within(new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve)), BOUND_MS, 'the blackhole listening');
    const port = (blackhole.address() as { port: number }).port;
    try {
      const a = await member('a');
      build(a, new Map([['a', a.url], ['b', `ws://127.0.0.1:${port}`]]), { handshakeTimeoutMs: 200 });
      start(a);
      // Without a handshake timeout the first dial would hang until TCP gave up: one connection, ever.
      const deadline = Date.now() + 10_000;
      while (accepted.length < 2) {
        if (Date.now() > deadline) throw new Error(`only ${accepted.length} dial(s) reached the blackhole`);
        await new Promise((resolve) => setTimeout(resolve, 50)); // polling, bounded by the deadline
      }
      // The transport dials again only once the first attempt is closed: the first was given up.
      expect(accepted.length).toBeGreaterThanOrEqual(2);
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => blackhole.close(() => resolve()));
    }
  });
});
