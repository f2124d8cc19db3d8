/**
 * What each client request does, once its frame passed its schema: writes are proposed through
 * the runtime (forwarded to the leader by a follower), reads are served linearizably by
 * default, serializably on request, or serializably once this member has reached the revision
 * the client carries (read-your-writes). Answers are JSON: bytes as base64; errors carry a code
 * from shared/ and, for NOT_LEADER, the leader's name and client URL when known.
 *
 * Must never: throw for a refused request (it answers an error); serve a linearizable read
 * before the member has applied the confirmed read index.
 */

import type { RequestType } from '../../shared/protocol.js';
import type { StateCommand, StateMachine, StateResult } from '../state/state-machine.js';
import type { ClientStamp } from '../state/sessions.js';
import type { MemberRuntime } from '../node/runtime.js';
import { RetryableError } from '../node/waiting-list.js';
import type { WatchHub, WatchScope, WatchSink } from '../watch/hub.js';
import { checkPath } from '../../shared/paths.js';
import type { NodeId } from '../raft/types.js';

/** One client connection, as the handlers see it: where its watches push. */
export interface ClientConnection {
  readonly sink: WatchSink;
}

export interface RequestHandlers {
  handle(type: RequestType, frame: Record<string, unknown>, connection: ClientConnection): Promise<Record<string, unknown>>;
  /** The connection closed: its watches end. */
  disconnected(connection: ClientConnection): void;
}

/** How long a read may wait for this member to reach the revision its client carries. */
const MIN_REVISION_WAIT_MS = 5_000;

export function createHandlers(runtime: MemberRuntime, hub: WatchHub, leaderUrl: (leader: NodeId) => string | null, status: () => Record<string, unknown>): RequestHandlers {
  const write = async (command: StateCommand, client: unknown, shape: (result: StateResult) => StateResult = (r) => r): Promise<Record<string, unknown>> => {
    try {
      return toWire(shape(await runtime.propose(command, client as ClientStamp | undefined)));
    } catch (error) {
      return refused(error, leaderUrl);
    }
  };
  const read = async (frame: Record<string, unknown>, serve: (machine: StateMachine) => unknown): Promise<Record<string, unknown>> => {
    try {
      if (frame['consistency'] === 'serializable') {
        if (typeof frame['minRevision'] === 'number') await runtime.whenRevision(frame['minRevision'], MIN_REVISION_WAIT_MS);
        return toWire(await runtime.readSerializable(serve));
      }
      return toWire(await runtime.readLinearizable(serve));
    } catch (error) {
      return refused(error, leaderUrl);
    }
  };
  const leaseAnswer = async (answer: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> => {
    try {
      return await answer();
    } catch (error) {
      return refused(error, leaderUrl);
    }
  };
  const bytes = (value: unknown): Uint8Array => (typeof value === 'string' ? Buffer.from(value, 'base64') : new Uint8Array(0));
  const plain = (b: Buffer | Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

  return {
    disconnected(connection) {
      hub.closed(connection.sink);
    },
    async handle(type, f, connection) {
      switch (type) {
        case 'register':
          return write({ op: 'registerClient' }, undefined);
        case 'keepalive':
          return write({ op: 'sessionKeepAlive', clientId: f['clientId'] as number }, undefined);
        case 'create':
          return write({ op: 'create', path: f['path'] as string, value: plain(bytes(f['value'])), ...pick(f, ['sequential', 'lease', 'parents']) }, f['client'], withoutValues(false));
        case 'put':
          return write({ op: 'put', path: f['path'] as string, value: plain(bytes(f['value'])), ...pick(f, ['ifVersion', 'lease']) }, f['client'], withoutValues(f['prevNode'] === true));
        case 'delete':
          return write({ op: 'delete', path: f['path'] as string, ...pick(f, ['ifVersion', 'recursive']) }, f['client']);
        case 'txn':
          return write(txnFromWire(f), f['client']);
        case 'compact':
          return write({ op: 'compact', revision: f['revision'] as number }, undefined);
        case 'get':
          return read(f, (machine) => machine.namespace.get(f['path'] as string, f['revision'] as number | undefined));
        case 'children':
          return read(f, (machine) => machine.namespace.childrenOf(f['path'] as string));
        case 'range':
          return read(f, (machine) => machine.namespace.range(f['path'] as string, { limit: f['limit'] as number, ...pick(f, ['after', 'revision']) } as { limit: number }));
        case 'status':
          return { ok: true, revision: runtime.machine.revision, status: status() };
        case 'leaseGrant': {
          const ttlMs = f['ttlMs'] as number;
          if (ttlMs < runtime.leaseTtlMinMs) {
            return { ok: false, error: { code: 'INVALID_ARGUMENT', message: `ttlMs must be at least ${runtime.leaseTtlMinMs} (twice this cluster's longest election timeout), got ${ttlMs}` } };
          }
          return write({ op: 'leaseGrant', ttlMs }, undefined);
        }
        case 'leaseRevoke':
          return write({ op: 'leaseRevoke', lease: f['lease'] as number }, undefined);
        case 'leaseKeepAlive':
          return leaseAnswer(async () => ({ ok: true, leases: await runtime.leaseRequest({ op: 'keepAlive', leases: f['leases'] as number[] }) }));
        case 'leaseTimeToLive':
          return leaseAnswer(async () => {
            const [answer] = await runtime.leaseRequest({ op: 'timeToLive', lease: f['lease'] as number });
            if (answer === undefined || !answer.ok) return { ok: false, error: { code: answer?.ok === false ? answer.code : 'LEASE_NOT_FOUND', message: answer?.ok === false ? answer.message : 'no such lease' } };
            const { ok: _ok, ...lease } = answer;
            if (f['paths'] !== true) return { ok: true, lease };
            const paths = await runtime.readLinearizable((machine) => machine.namespace.pathsOfLease(lease.id));
            return { ok: true, lease, paths };
          });
        case 'leaseList':
          return read(f, (machine) => ({ ok: true, revision: machine.revision, op: 'leaseList', leases: machine.leases.dump().leases.map(({ id, ttlMs }) => ({ id, ttlMs })) }));
        case 'watch': {
          const path = f['path'] as string;
          const checked = checkPath(path);
          if (!checked.ok) return { ok: false, error: { code: 'INVALID_ARGUMENT', message: checked.error.message } };
          const watchId = f['watchId'] as number;
          const started = hub.watch(connection.sink, watchId, {
            path,
            scope: (f['scope'] as WatchScope | undefined) ?? 'node',
            ...(typeof f['fromRevision'] === 'number' ? { fromRevision: f['fromRevision'] } : {}),
            prevNode: f['prevNode'] === true,
            noPut: f['noPut'] === true,
            noDelete: f['noDelete'] === true,
            progressNotify: f['progressNotify'] === true,
          });
          if (!started.ok) {
            return { ok: false, error: { code: started.code, message: started.message, ...(started.compactRevision === undefined ? {} : { compactRevision: started.compactRevision }) } };
          }
          return { ok: true, watchId, revision: started.revision };
        }
        case 'cancelWatch':
          return hub.cancel(connection.sink, f['watchId'] as number)
            ? { ok: true, watchId: f['watchId'] }
            : { ok: false, error: { code: 'WATCH_NOT_FOUND', message: `no watch ${String(f['watchId'])} is open on this connection` } };
        case 'watchProgress':
          return { ok: true, revision: hub.progress(connection.sink) };
      }
    },
  };
}

/**
 * A write's answer without the value the client just sent (the node's path and stat only), and
 * without the previous node unless asked for: an answer a fraction of the request's size.
 */
function withoutValues(keepPrevNode: boolean): (result: StateResult) => StateResult {
  return (result) => {
    const r = result as Record<string, unknown>;
    if (r['ok'] !== true || typeof r['node'] !== 'object' || r['node'] === null) return result;
    const node = r['node'] as { path: string; stat: unknown };
    const { prevNode, ...rest } = r;
    return { ...rest, node: { path: node.path, stat: node.stat }, ...(keepPrevNode && prevNode !== undefined ? { prevNode } : {}) } as unknown as StateResult;
  };
}

function pick(frame: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (frame[key] !== undefined) out[key] = frame[key];
  return out;
}

function txnFromWire(f: Record<string, unknown>): StateCommand {
  const decodeValue = (op: Record<string, unknown>): Record<string, unknown> =>
    op['op'] === 'create' || op['op'] === 'put' ? { ...op, value: new Uint8Array(Buffer.from((op['value'] as string | undefined) ?? '', 'base64')) } : op;
  const compare = ((f['compare'] as Record<string, unknown>[] | undefined) ?? []).map((c) =>
    c['target'] === 'value' && typeof c['operand'] === 'string' ? { ...c, operand: new Uint8Array(Buffer.from(c['operand'], 'base64')) } : c,
  );
  return {
    op: 'txn',
    compare,
    success: ((f['success'] as Record<string, unknown>[] | undefined) ?? []).map(decodeValue),
    failure: ((f['failure'] as Record<string, unknown>[] | undefined) ?? []).map(decodeValue),
  } as unknown as StateCommand;
}

/** A state-machine answer as JSON: bytes as base64, errors under `error`. */
function toWire(result: StateResult | unknown): Record<string, unknown> {
  const r = result as { ok?: boolean; code?: string; message?: string; revision?: number };
  if (r.ok === false) return { ok: false, revision: r.revision, error: { code: r.code, message: r.message } };
  return wireValue(result) as Record<string, unknown>;
}

/** A copy fit for JSON.stringify: Uint8Arrays as base64 strings, undefined fields dropped. */
function wireValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(wireValue);
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key];
    if (field !== undefined) out[key] = wireValue(field);
  }
  return out;
}

function refused(error: unknown, leaderUrl: (leader: NodeId) => string | null): Record<string, unknown> {
  if (error instanceof RetryableError) {
    const hint = error.leaderHint;
    return { ok: false, error: { code: error.code, message: error.message, ...(hint === null ? {} : { leader: { name: hint, url: leaderUrl(hint) } }) } };
  }
  return { ok: false, error: { code: 'UNAVAILABLE', message: (error as Error).message } };
}
