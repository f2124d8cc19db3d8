/**
 * How the client carries one request to an answer across member failures: reads are retried
 * freely (on a lost member, NOT_LEADER, UNAVAILABLE, RESOURCE_EXHAUSTED) until their deadline;
 * writes carry their session stamp and are retried with the same stamp — on a lost member, an
 * unknown outcome (TIMEOUT, OUTCOME_UNKNOWN) or a refusal that says "retry" — so a write is
 * applied at most once however often it is sent. Every answer's revision raises the highest
 * revision the client has seen, which serializable reads carry as `minRevision` so that a read
 * after a switch of member never sees older state. The auth changes (users, roles, auth on and
 * off) and the membership changes are writes without a stamp: retried only while certainly not
 * applied.
 *
 * Must never: report a write as "certainly not applied" once a frame of it may have reached a
 * member (it is OUTCOME_UNKNOWN then, unless a stamped retry got its real answer); retry a
 * write without its stamp; send an unstamped write again once a frame of it may have reached a
 * member; wait between tries longer than the backoff's cap.
 */

import { isErrorCode, WardenError, type ErrorCode, type WardenErrorDetails } from '../shared/errors.js';
import { backoffMs, type BackoffPolicy } from './backoff.js';
import { ChannelLost, type Answer, type Channel, type ClientLogger } from './channel.js';
import { randomNonce, WriteSession, type Registration } from './exactly-once.js';
import type { ClientClock } from './transport.js';

/** What every call takes: an AbortSignal and a deadline of its own. */
export interface CallOptions {
  readonly signal?: AbortSignal;
  /** The whole call, retries included, in ms (the client's `timeoutMs` by default). */
  readonly timeoutMs?: number;
}

export interface RequestsOptions {
  readonly channel: Channel;
  readonly clock: ClientClock;
  readonly random: () => number;
  readonly backoff: BackoffPolicy;
  readonly timeoutMs: number;
  readonly logger?: ClientLogger;
}

/**
 * The WardenError of an error answer. A code this client does not know (a newer member's) says
 * nothing certain: for a write it is OUTCOME_UNKNOWN, never a code that invites a blind retry.
 */
export function errorOfAnswer(answer: Answer, isWrite = false): WardenError {
  const error = (answer['error'] ?? {}) as { code?: unknown; message?: unknown } & WardenErrorDetails;
  const code: ErrorCode = isErrorCode(error.code) ? error.code : isWrite ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE';
  const details: WardenErrorDetails = {
    ...(error.leader === undefined ? {} : { leader: error.leader }),
    ...(error.limit === undefined ? {} : { limit: error.limit }),
    ...(error.compactRevision === undefined ? {} : { compactRevision: error.compactRevision }),
  };
  return new WardenError(code, typeof error.message === 'string' ? error.message : code, details);
}

const RETRY_AS_IS: ReadonlySet<ErrorCode> = new Set(['NOT_LEADER', 'UNAVAILABLE', 'RESOURCE_EXHAUSTED']);
const UNKNOWN: ReadonlySet<ErrorCode> = new Set(['TIMEOUT', 'OUTCOME_UNKNOWN']);
/** Why an UNAUTHENTICATED answer to a retry says nothing of an earlier try: the member refuses it at the connection, before any record of a write. */
const DOOR = 'the retry was refused UNAUTHENTICATED (the connection\'s credentials were refused), which says nothing of the earlier try';

export class Requests {
  /** The highest revision any answer or event carried: the client's causal token. */
  highestRevision = 0;
  private session: WriteSession | null = null;
  private registering: Promise<WriteSession> | null = null;
  private keepaliveTimer: unknown = null;

  constructor(private readonly options: RequestsOptions) {}

  /** Raise the highest revision seen (an answer, a watch event). */
  saw(revision: unknown): void {
    if (typeof revision === 'number' && revision > this.highestRevision) this.highestRevision = revision;
  }

  private deadlineOf(call: CallOptions): number {
    return this.options.clock.now() + (call.timeoutMs ?? this.options.timeoutMs);
  }

  private async pause(attempt: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const wait = Math.min(backoffMs(this.options.backoff, attempt, this.options.random), Math.max(0, deadline - this.options.clock.now()));
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = this.options.clock.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, wait);
      const onAbort = (): void => {
        this.options.clock.clearTimeout(timer);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Leave the member an answer came from when it cannot serve (another may). */
  private leaveOn(answer: Answer & { generation: number }, error: WardenError): void {
    if (error.code === 'NOT_LEADER' || error.code === 'UNAVAILABLE') {
      this.options.channel.leave(answer.generation, `${error.code}: ${error.message}`, error.details.leader?.url ?? null);
    }
  }

  /**
   * A request that changes nothing — or one idempotent by itself (`idempotent: true`: a compact,
   * a lease grant with its chosen id, a revoke), whose failure after it may have been sent says
   * OUTCOME_UNKNOWN — retried freely until an answer that is not "retry", or the deadline.
   */
  async read(frame: Record<string, unknown>, call: CallOptions = {}, options: { readonly attemptMs?: number; readonly urgent?: boolean; readonly idempotent?: boolean } = {}): Promise<Answer> {
    const deadline = this.deadlineOf(call);
    let lastError: Error | null = null;
    let mayHaveApplied = false;
    const giveUp = (why: string): WardenError =>
      options.idempotent === true && mayHaveApplied
        ? new WardenError('OUTCOME_UNKNOWN', `${why}; it may have been applied (${lastError?.message ?? ''}): retrying it is safe`)
        : lastError instanceof WardenError && lastError.code === 'RESOURCE_EXHAUSTED'
          ? // A limit the member named says more than "unavailable": which table is full, which flag.
            new WardenError(lastError.code, `${why}: ${lastError.message}; nothing was changed`, lastError.details)
          : new WardenError('UNAVAILABLE', `${why} (${lastError?.message ?? 'no member answered'}); nothing was changed`);
    for (let attempt = 0; ; attempt++) {
      if (call.signal?.aborted) throw giveUp('aborted by the caller');
      if (this.options.clock.now() >= deadline) throw giveUp('no answer before the deadline');
      if (this.options.channel.isClosed) throw giveUp('the client is closed');
      let answer: Answer & { readonly generation: number };
      try {
        answer = await this.options.channel.request(frame, deadline, {
          ...(call.signal === undefined ? {} : { signal: call.signal }),
          ...(options.attemptMs === undefined ? {} : { attemptMs: options.attemptMs }),
          urgent: options.urgent === true || (options.idempotent === true && mayHaveApplied),
        });
      } catch (error) {
        // The client's own refusal, unsent (a full line, the socket's credentials refused): it
        // says nothing of an earlier try that may have been applied.
        if (error instanceof WardenError && options.idempotent === true && mayHaveApplied) throw giveUp(error.message);
        if (!(error instanceof ChannelLost)) throw error;
        if (error.sent) mayHaveApplied = true;
        lastError = error;
        await this.pause(attempt, deadline, call.signal);
        continue;
      }
      this.saw(answer['revision']);
      if (answer.ok) return answer;
      const error = errorOfAnswer(answer, options.idempotent === true);
      if (options.idempotent === true && mayHaveApplied && error.code === 'UNAUTHENTICATED') throw giveUp(DOOR);
      if (!RETRY_AS_IS.has(error.code)) throw error;
      this.leaveOn(answer, error);
      lastError = error;
      await this.pause(attempt, deadline, call.signal);
    }
  }

  /**
   * One request on the connection `generation` only, never retried: for what lives on one
   * member's connection (a snapshot's cursor). Any other outcome — the member lost, the frame
   * sent on a newer connection — is UNAVAILABLE: it changes nothing, so the caller may start over.
   */
  async once(frame: Record<string, unknown>, generation: number, call: CallOptions = {}): Promise<Answer> {
    let answer: Answer & { readonly generation: number };
    try {
      answer = await this.options.channel.request(frame, this.deadlineOf(call), call.signal === undefined ? {} : { signal: call.signal });
    } catch (error) {
      if (error instanceof ChannelLost) throw new WardenError('UNAVAILABLE', error.deadline ? `aborted, or past its deadline (${error.message})` : `the connection this depends on was lost (${error.message}); start again`);
      throw error;
    }
    if (answer.generation !== generation) throw new WardenError('UNAVAILABLE', 'the client moved to another connection, which does not hold this; start again');
    this.saw(answer['revision']);
    if (!answer.ok) throw errorOfAnswer(answer);
    return answer;
  }

  /**
   * A namespace write, exactly once: stamped with the client's session and retried with the
   * same stamp until it has its answer. An error tells whether it may have been applied.
   */
  async write(frame: Record<string, unknown>, call: CallOptions = {}): Promise<Answer> {
    const deadline = this.deadlineOf(call);
    const session = await this.writeSession();
    const seq = await session.begin();
    let mayHaveApplied = false;
    let lastError: Error | null = null;
    const giveUp = (why: string): WardenError =>
      mayHaveApplied
        ? new WardenError('OUTCOME_UNKNOWN', `${why}; the write may have been applied (${lastError?.message ?? ''})`)
        : lastError instanceof WardenError && lastError.code === 'RESOURCE_EXHAUSTED'
          ? new WardenError(lastError.code, `${why}: ${lastError.message}; the write was not applied`, lastError.details)
          : new WardenError('UNAVAILABLE', `${why}; the write was not sent (${lastError?.message ?? 'no member answered'})`);
    try {
      for (let attempt = 0; ; attempt++) {
        if (call.signal?.aborted) throw giveUp('aborted by the caller');
        if (this.options.clock.now() >= deadline) throw giveUp('no answer before the deadline');
        if (this.options.channel.isClosed) throw giveUp('the client is closed');
        let answer: Answer & { readonly generation: number };
        try {
          // A retry of a write that may have been applied goes ahead of the line and is never
          // refused for a full one: its seq is open, and only its real answer can close it.
          answer = await this.options.channel.request({ ...frame, client: session.stamp(seq) }, deadline, { ...(call.signal === undefined ? {} : { signal: call.signal }), urgent: mayHaveApplied });
        } catch (error) {
          if (error instanceof WardenError) {
            // The client's own refusal, unsent (its waiting line is full, its socket's credentials
            // were refused), of a write already sent says nothing of that write.
            if (mayHaveApplied) throw giveUp(error.message);
            throw error;
          }
          if (!(error instanceof ChannelLost)) throw error;
          if (error.sent) mayHaveApplied = true;
          lastError = error;
          await this.pause(attempt, deadline, call.signal);
          continue;
        }
        this.saw(answer['revision']);
        if (answer.ok) return answer;
        const error = errorOfAnswer(answer, true);
        if (error.code === 'SESSION_EXPIRED') {
          if (this.session === session) this.session = null; // the next write registers anew
          throw error;
        }
        if (UNKNOWN.has(error.code)) mayHaveApplied = true;
        else if (error.code === 'UNAUTHENTICATED' && mayHaveApplied) throw giveUp(DOOR);
        // A final refusal comes from the state: a stamped retry of a write that was applied
        // would have been answered from the record instead, so it is the write's true answer.
        else if (!RETRY_AS_IS.has(error.code)) throw error;
        this.leaveOn(answer, error);
        lastError = error;
        await this.pause(attempt, deadline, call.signal);
      }
    } finally {
      session.done(seq);
    }
  }

  /**
   * A write without a session stamp (the auth changes: users, roles, auth on and off; the
   * membership changes), retried only while it certainly was not applied: unsent, or refused
   * with a "retry" code. Once a frame of it may have reached a member without an answer back —
   * or the answer says TIMEOUT or OUTCOME_UNKNOWN — it is OUTCOME_UNKNOWN and never sent again:
   * with no stamp, a member could not tell a repeat from a new change. `attemptMs`: how long the
   * member may stay silent before it is left (a change the member answers only once it has
   * waited for something — a new member to catch up — needs more than the channel's default).
   */
  async unstamped(frame: Record<string, unknown>, call: CallOptions = {}, options: { readonly attemptMs?: number } = {}): Promise<Answer> {
    const deadline = this.deadlineOf(call);
    let lastError: Error | null = null;
    const giveUp = (why: string): WardenError =>
      lastError instanceof WardenError && lastError.code === 'RESOURCE_EXHAUSTED'
        ? new WardenError(lastError.code, `${why}: ${lastError.message}; the change was not applied`, lastError.details)
        : new WardenError('UNAVAILABLE', `${why}; the change was not sent (${lastError?.message ?? 'no member answered'})`);
    for (let attempt = 0; ; attempt++) {
      if (call.signal?.aborted) throw giveUp('aborted by the caller');
      if (this.options.clock.now() >= deadline) throw giveUp('no answer before the deadline');
      if (this.options.channel.isClosed) throw giveUp('the client is closed');
      let answer: Answer & { readonly generation: number };
      try {
        answer = await this.options.channel.request(frame, deadline, { ...(call.signal === undefined ? {} : { signal: call.signal }), ...(options.attemptMs === undefined ? {} : { attemptMs: options.attemptMs }) });
      } catch (error) {
        if (!(error instanceof ChannelLost)) throw error;
        if (error.sent) throw new WardenError('OUTCOME_UNKNOWN', `${error.deadline ? 'no answer before the deadline' : 'the member was lost before it answered'} (${error.message}); the change may have been applied: check before trying it again`);
        lastError = error;
        await this.pause(attempt, deadline, call.signal);
        continue;
      }
      this.saw(answer['revision']);
      if (answer.ok) return answer;
      // TIMEOUT and OUTCOME_UNKNOWN say themselves that it may have been applied: thrown as they are.
      const error = errorOfAnswer(answer, true);
      if (!RETRY_AS_IS.has(error.code)) throw error;
      this.leaveOn(answer, error);
      lastError = error;
      await this.pause(attempt, deadline, call.signal);
    }
  }

  /**
   * The session writes are stamped with, registered on first use (the nonce makes a retried
   * register answer the same one). Registered under the client's own deadline, not a caller's:
   * writers share it, and one caller giving up must not fail the others.
   */
  private writeSession(): Promise<WriteSession> {
    if (this.session !== null) return Promise.resolve(this.session);
    if (this.registering !== null) return this.registering;
    const nonce = randomNonce();
    this.registering = (async () => {
      try {
        const answer = await this.read({ type: 'register', nonce }, {}, { urgent: true });
        const registration: Registration = { clientId: answer['clientId'] as number, secret: answer['secret'] as string };
        this.session = new WriteSession(registration);
        this.keepSessionAlive();
        return this.session;
      } finally {
        this.registering = null;
      }
    })();
    return this.registering;
  }

  /** A session idle for 60 s expires at the members: a keepalive every 20 s while the client lives. */
  private keepSessionAlive(): void {
    if (this.keepaliveTimer !== null) return;
    const tick = (): void => {
      this.keepaliveTimer = this.options.clock.setTimeout(() => {
        const session = this.session;
        if (session === null) {
          this.keepaliveTimer = null;
          return;
        }
        this.read({ type: 'keepalive', clientId: session.registration.clientId, secret: session.registration.secret }, { timeoutMs: 15_000 }, { urgent: true }).then(
          () => undefined,
          (error: unknown) => {
            if (error instanceof WardenError && error.code === 'SESSION_EXPIRED' && this.session === session) this.session = null;
          },
        );
        tick();
      }, 20_000);
    };
    tick();
  }

  close(): void {
    if (this.keepaliveTimer !== null) this.options.clock.clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = null;
  }
}
