/**
 * In-memory twins of the client's seams for unit tests: a fake clock whose timers run only when
 * the test advances it, and fake members behind fake sockets whose answers the test scripts
 * (answer, refuse, stay silent as a frozen process would, close).
 *
 * Must never: run a timer the test did not advance to; deliver a frame synchronously inside
 * `send` (a real socket never does — it would hide ordering bugs).
 */

import type { ClientClock, OpenSocket, SocketLike } from '../../client/transport.js';

export class FakeClock implements ClientClock {
  private time = 0;
  private nextHandle = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.time + Math.max(0, ms), fn });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Move time forward by `ms`, running every timer due on the way (in time order), with microtasks between. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await flush();
      let due: [number, { at: number; fn: () => void }] | null = null;
      for (const entry of this.timers) if (entry[1].at <= end && (due === null || entry[1].at < due[1].at)) due = entry;
      if (due === null) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
    }
    this.time = end;
    await flush();
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}

/** Let every queued promise callback and macrotask-free continuation run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

export type Frame = Record<string, unknown>;

/** What a fake member does with a request: an answer (without id), or null for silence. */
export type Behaviour = (frame: Frame, member: FakeMember) => Frame | null;

export class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;

  constructor(readonly member: FakeMember) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('socket not open');
    const frame = JSON.parse(data) as Frame;
    this.member.received.push(frame);
    queueMicrotask(() => {
      if (this.readyState !== 1 || this.member.frozen) return;
      const answer = this.member.behaviour(frame, this.member);
      if (answer !== null) this.deliver({ ...answer, id: frame['id'] });
    });
  }

  deliver(frame: Frame): void {
    if (this.readyState !== 1) return;
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }
}

export class FakeMember {
  frozen = false;
  /** Refuse connections (a member that is down). */
  down = false;
  readonly received: Frame[] = [];
  readonly sockets: FakeSocket[] = [];

  constructor(
    readonly url: string,
    public behaviour: Behaviour,
  ) {}

  /** The socket open now, if any. */
  get socket(): FakeSocket | undefined {
    return this.sockets.filter((s) => s.readyState === 1).at(-1);
  }

  /** Push a frame (a watch event) on the open socket. */
  push(frame: Frame): void {
    this.socket?.deliver(frame);
  }

  /** Drop every open socket (a process killed). */
  kill(): void {
    for (const socket of this.sockets) socket.close(1006, 'killed');
  }
}

/** Members by URL, and the OpenSocket the client uses to reach them. */
export function fakeCluster(members: FakeMember[]): OpenSocket {
  return (url) => {
    const member = members.find((m) => m.url === url);
    if (member === undefined) throw new Error(`no member at ${url}`);
    const socket = new FakeSocket(member);
    member.sockets.push(socket);
    queueMicrotask(() => {
      if (member.down) {
        socket.readyState = 3;
        socket.onclose?.({ code: 1006, reason: 'connection refused' });
        return;
      }
      if (member.frozen) return; // the handshake never completes
      socket.readyState = 1;
      socket.onopen?.({});
    });
    return socket;
  };
}

/** A behaviour that answers every request ok, with a growing revision, and registers sessions. */
export function okBehaviour(): Behaviour {
  let revision = 0;
  return (frame) => {
    switch (frame['type']) {
      case 'register':
        return { ok: true, revision: ++revision, clientId: 1, secret: '0'.repeat(32) };
      case 'watch':
        return { ok: true, revision, watchId: frame['watchId'] };
      default:
        return { ok: true, revision: frame['type'] === 'get' ? revision : ++revision, node: { path: frame['path'], stat: {}, value: '' } };
    }
  };
}

/** Settle `promise` while advancing the fake clock in `step`s, up to `ms` of fake time. */
export async function drive<T>(clock: FakeClock, promise: Promise<T>, ms = 20_000, step = 10): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  for (let t = 0; t < ms && !settled; t += step) await clock.advance(step);
  await flush();
  if (!settled) throw new Error(`not settled within ${ms} ms of fake time`);
  return watched;
}
