/**
 * A simulated client: first a client session (registered through the log, retried with the
 * same nonce), then one operation at a time (put, compare-and-set, linearizable get) on a few
 * shared registers, each write stamped with the session and its seq and retried across members
 * with the same stamp until it gets an answer (exactly-once), and recorded in the shared history
 * format for the linearizability checker.
 *
 * Must never: record an operation as done before its answer arrived, or reuse a seq for a
 * different command (that would make a retry apply something else).
 */

import type { NodeId } from '../../server/raft/index.js';
import type { Operation, RegisterInput, RegisterOutput, RegisterValue } from '../linearizability/history.js';
import type { SimRandom } from './random.js';

export type RegisterCommand =
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: RegisterValue; readonly value: string };

export interface Session {
  readonly id: number;
  readonly secret: string;
}

export type ClientRequest =
  | { readonly kind: 'register'; readonly clientId: number; readonly requestId: string; readonly secret: string; readonly nonce: string }
  | { readonly kind: 'write'; readonly clientId: number; readonly requestId: string; readonly session: Session; readonly seq: number; readonly command: RegisterCommand }
  | { readonly kind: 'read'; readonly clientId: number; readonly requestId: string; readonly key: string }
  // A lease holder's (lease-holder.ts).
  | { readonly kind: 'leaseGrant'; readonly clientId: number; readonly requestId: string; readonly lease: number; readonly ttlMs: number }
  | { readonly kind: 'leaseAttach'; readonly clientId: number; readonly requestId: string; readonly lease: number; readonly path: string }
  | { readonly kind: 'keepAlive'; readonly clientId: number; readonly requestId: string; readonly lease: number };

export type ClientReply =
  | { readonly kind: 'registered'; readonly requestId: string; readonly sessionId: number }
  | { readonly kind: 'written'; readonly requestId: string; readonly result: { readonly kind: 'put' } | { readonly kind: 'cas'; readonly ok: boolean } }
  | { readonly kind: 'read'; readonly requestId: string; readonly value: RegisterValue }
  | { readonly kind: 'error'; readonly requestId: string; readonly leaderHint: NodeId | null }
  | { readonly kind: 'granted'; readonly requestId: string }
  | { readonly kind: 'attached'; readonly requestId: string }
  | { readonly kind: 'alive'; readonly requestId: string }
  | { readonly kind: 'gone'; readonly requestId: string };

export interface ClientProfile {
  readonly keys: readonly string[];
  readonly thinkMsMax: number;
  readonly timeoutMs: number;
  /** Abandon a write after this many attempts (its outcome is then unknown); 0 never abandons. */
  readonly abandonAfterAttempts: number;
  /**
   * At most this many abandoned operations per client: each unknown outcome multiplies the
   * linearizability search, and a handful already exercises the checker's unknown path.
   */
  readonly abandonMax: number;
  /** Share of reads sent to a random member instead of the one this client last used. */
  readonly readAnywhere: number;
}

export interface ClientIo {
  now(): number;
  send(clientId: number, member: NodeId, request: ClientRequest): void;
  /** Wake this client at `at` with `token`, to time out or start its next operation. */
  wakeAt(at: number, clientId: number, token: number): void;
  record(op: Operation): void;
}

interface InFlight {
  /** A register operation, or the session registration that comes first (never in the history). */
  readonly input: RegisterInput | { readonly kind: 'register' };
  readonly seq: number;
  readonly callTime: number;
  attempt: number;
  requestId: string;
}

export class SimClient {
  private seq = 0;
  private valueCounter = 0;
  private current: InFlight | null = null;
  private wakeToken = 0;
  private target: NodeId;
  /** In the healing phase a client finishes what it has and starts nothing new. */
  private finishing = false;
  private abandoned = 0;
  /** Where to send the retry after an error answer (the leader hint); null after a timeout. */
  private retryTarget: NodeId | null = null;
  private readonly lastSeen = new Map<string, string | null>();
  private session: Session | null = null;

  constructor(
    readonly id: number,
    private readonly members: readonly NodeId[],
    private readonly profile: ClientProfile,
    private readonly random: SimRandom,
    private readonly io: ClientIo,
  ) {
    this.target = random.pick(members);
  }

  get busy(): boolean {
    return this.current !== null;
  }

  /** Schedule the first operation. */
  start(): void {
    this.io.wakeAt(this.io.now() + this.random.between(0, this.profile.thinkMsMax), this.id, ++this.wakeToken);
  }

  /** Finish the operation in flight (never abandoning it) and start no new one. */
  finish(): void {
    this.finishing = true;
  }

  onWake(token: number): void {
    if (token !== this.wakeToken) return; // superseded by a reply or a newer timer
    if (this.current === null) {
      if (!this.finishing) this.begin();
      return;
    }
    if (this.retryTarget !== null) {
      const target = this.retryTarget;
      this.retryTarget = null;
      this.retry(target);
      return;
    }
    // A timeout: this member may be down or cut off, so try another.
    this.retry(this.random.pick(this.members.filter((m) => m !== this.target)));
  }

  onReply(reply: ClientReply): void {
    const op = this.current;
    if (op === null || !reply.requestId.startsWith(`${this.id}:${op.seq}:`)) return; // a stale answer
    if (reply.kind === 'error') {
      // Follow the leader hint, after a short back-off so a leaderless cluster is not hammered.
      this.retryTarget = reply.leaderHint ?? this.random.pick(this.members);
      this.io.wakeAt(this.io.now() + this.random.between(1, 10), this.id, ++this.wakeToken);
      return;
    }
    if (reply.kind === 'granted' || reply.kind === 'attached' || reply.kind === 'alive' || reply.kind === 'gone') return; // a lease holder's
    if (reply.kind === 'registered') {
      if (op.input.kind !== 'register') return;
      this.session = { id: reply.sessionId, secret: this.secret() };
      this.current = null;
      // The operation the registration went before starts now.
      this.io.wakeAt(this.io.now(), this.id, ++this.wakeToken);
      return;
    }
    if (op.input.kind === 'register') return;
    let output: RegisterOutput;
    if (reply.kind === 'read') {
      if (op.input.kind !== 'get') return;
      output = { kind: 'get', value: reply.value };
    } else {
      if (op.input.kind === 'get' || reply.result.kind !== op.input.kind) return;
      output = reply.result;
    }
    if (output.kind === 'get') this.lastSeen.set(op.input.key, output.value);
    else if (op.input.kind !== 'get' && (output.kind === 'put' || output.ok)) this.lastSeen.set(op.input.key, op.input.value);
    this.io.record({ clientId: this.id, input: op.input, callTime: op.callTime, returnTime: this.io.now(), output });
    this.current = null;
    if (!this.finishing) this.io.wakeAt(this.io.now() + this.random.between(0, this.profile.thinkMsMax), this.id, ++this.wakeToken);
  }

  private begin(): void {
    if (this.session === null) {
      // Seq 0 is the registration's: the session's writes are numbered from 1.
      this.current = { input: { kind: 'register' }, seq: 0, callTime: this.io.now(), attempt: 0, requestId: '' };
      this.retry(this.target);
      return;
    }
    const key = this.random.pick(this.profile.keys);
    const roll = this.random.intBelow(10);
    let input: RegisterInput;
    if (roll < 4) input = { kind: 'get', key };
    else if (roll < 7) input = { kind: 'put', key, value: this.freshValue() };
    // Compare against the last value this client saw, so compare-and-set sometimes wins.
    else input = { kind: 'cas', key, expected: this.lastSeen.get(key) ?? null, value: this.freshValue() };
    if (input.kind === 'get' && this.random.chance(this.profile.readAnywhere)) this.target = this.random.pick(this.members);
    this.seq++;
    this.current = { input, seq: this.seq, callTime: this.io.now(), attempt: 0, requestId: '' };
    this.retry(this.target);
  }

  private freshValue(): string {
    return `v${this.id}.${this.valueCounter++}`;
  }

  private retry(member: NodeId): void {
    const op = this.current!;
    const limit = this.profile.abandonAfterAttempts;
    if (op.input.kind !== 'register' && !this.finishing && limit > 0 && op.attempt >= limit && this.abandoned < this.profile.abandonMax) {
      this.abandoned++;
      // Give up: a write's outcome is now unknown; a read simply never happened.
      if (op.input.kind !== 'get') {
        this.io.record({ clientId: this.id, input: op.input, callTime: op.callTime, returnTime: null, output: null });
      }
      this.current = null;
      this.io.wakeAt(this.io.now() + this.random.between(0, this.profile.thinkMsMax), this.id, ++this.wakeToken);
      return;
    }
    this.retryTarget = null;
    op.attempt++;
    op.requestId = `${this.id}:${op.seq}:${op.attempt}`;
    this.target = member;
    this.io.send(this.id, member, this.request(op));
    this.io.wakeAt(this.io.now() + this.profile.timeoutMs, this.id, ++this.wakeToken);
  }

  private request(op: InFlight): ClientRequest {
    if (op.input.kind === 'register') return { kind: 'register', clientId: this.id, requestId: op.requestId, secret: this.secret(), nonce: `client-${this.id}` };
    if (op.input.kind === 'get') return { kind: 'read', clientId: this.id, requestId: op.requestId, key: op.input.key };
    return { kind: 'write', clientId: this.id, requestId: op.requestId, session: this.session!, seq: op.seq, command: op.input };
  }

  /** The session's secret: fixed per client (the simulator has no crypto randomness), 32 hex digits. */
  private secret(): string {
    return this.id.toString(16).padStart(32, '0');
  }
}
