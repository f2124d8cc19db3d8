/**
 * Leader election (etcd's concurrency.Election, Curator's LeaderLatch; the book's Leader and
 * Followers through a Consistent Core). Each candidate makes one sequential ephemeral node under
 * the election path with its Session's lease (`c-0000000042`, its value the candidate's value);
 * the lowest counter leads; every other candidate watches only the node just ahead of its own
 * (no herd). A term of office carries a fencing token: the createRevision of the leader's node.
 * Nodes are made in order, and a node ahead of the leader's is gone for good, so each new
 * leader's token is greater than every earlier leader's. `proclaim` writes through a txn that
 * compares the leader's own node's createRevision: once the term has ended (the node is gone —
 * the session expired or was revoked) the write is refused, however late the old leader is.
 * A term ends with `resigned` or `lost` (the session died, the node was deleted, or a fenced
 * write was refused); its `signal` aborts then. A leader's writes to other keys go through
 * `guard(txn)` / `fencedTxn` / `fencedPut` (as Lock's): the txn also compares the leader's node's
 * createRevision and reads the node in its else branch, so a deposed leader's txn is refused
 * whole (NO_NODE), nothing of it applied.
 *
 * One candidacy per Session per election path (as etcd): a node found under the session's lease
 * (left by a create whose outcome was unknown, or a resign that could not reach the cluster) is
 * deleted before a campaign makes its own. A candidate node whose delete failed (a resign, or a
 * failed campaign's withdrawal) is remembered, and the next `resign()` deletes it: a node at the
 * head of the line on a live session would keep everyone else out.
 *
 * Must never: report a term that a linearizable read did not show first in line; write as
 * leader without the fence; hand out a token not greater than the previous term's of this
 * candidate; leave its candidate node behind after a campaign that failed, if it can delete it;
 * forget a candidate node it failed to delete while its session lives.
 */

import { cmp, op, TxnBuilder, WardenError, Emitter, type CallOptions, type Session, type TxnResult, type Value, type WardenClient, type WardenNode, type WriteResult } from '../public.js';
import { childPath, childrenSnapshots, deadline, invariant, nameOf, reasonOr, untilDeleted, type WaitOptions } from './waits.js';
import { fencedPutWith, fencedTxnBuilder, guardTxn } from './fence.js';

/** The prefix of candidate nodes (the server appends a 10-digit counter). */
const CANDIDATE_PREFIX = 'c-';
const CANDIDATE_NAME = /^c-\d{10}$/;
/** Predecessors a campaign may outlive before it stops (each round one was deleted). */
const CAMPAIGN_ROUNDS_MAX = 1_000_000;

/** The leader as anyone can see it. */
export interface Leader {
  readonly value: string;
  readonly path: string;
  /** The fencing token of its term of office: its node's createRevision. */
  readonly token: number;
}

/** This candidate's term of office. */
export interface Term {
  readonly token: number;
  readonly path: string;
  /** Aborted when the term ends (resigned or lost): hand it to the leader's work. */
  readonly signal: AbortSignal;
}

export interface ElectionEvents extends Record<string, unknown> {
  elected: Term;
  /** The term ended without a resign: the session died, the node was deleted, or a fenced write was refused. */
  lost: { readonly term: Term; readonly error: WardenError };
  resigned: Term;
}

export interface ElectionOptions {
  /** Candidates an election holds, at most (reads past it fail RESOURCE_EXHAUSTED). Default 10,000. */
  readonly candidatesMax?: number;
}

interface Office {
  readonly term: Term;
  readonly controller: AbortController;
}

/** A candidate node of ours that should be gone but may not be: known by path and token, or only by our lease. */
type Stray = { readonly path: string; readonly token: number } | 'unknown';

export const isCandidateName = (name: string): boolean => CANDIDATE_NAME.test(name);

/** The leader among candidate nodes: the lowest counter. */
export function leaderOf(nodes: Iterable<WardenNode>): Leader | null {
  let first: WardenNode | null = null;
  for (const node of nodes) {
    if (!isCandidateName(nameOf(node.path))) continue;
    if (first === null || node.path < first.path) first = node;
  }
  return first === null ? null : { value: first.value, path: first.path, token: first.stat.createRevision };
}

export class Election extends Emitter<ElectionEvents> {
  private office: Office | null = null;
  private campaignRun: { readonly controller: AbortController; readonly settled: Promise<unknown> } | null = null;
  private lastToken = 0;
  /** Our node whose delete failed: the next resign() (or campaign) deletes it. */
  private stray: Stray | null = null;
  private readonly candidatesMax: number;

  constructor(
    private readonly client: WardenClient,
    /** The election's path; candidates are its children. */
    readonly path: string,
    /** The session candidacies live with (only `campaign` needs one; watchers may pass none). */
    private readonly sessionOrNone?: Session,
    options: ElectionOptions = {},
  ) {
    super();
    this.candidatesMax = options.candidatesMax ?? 10_000;
    const session = sessionOrNone;
    session?.signal.addEventListener('abort', () => this.endTerm('lost', session.signal.reason instanceof WardenError ? session.signal.reason : new WardenError('LEASE_NOT_FOUND', 'the session ended')), { once: true });
  }

  private get session(): Session {
    if (this.sessionOrNone === undefined) throw new WardenError('INVALID_ARGUMENT', `standing in ${this.path} needs an Election made with a session`);
    return this.sessionOrNone;
  }

  /** This candidate's term while it leads, else null. */
  get term(): Term | null {
    return this.office?.term ?? null;
  }

  get isLeader(): boolean {
    return this.office !== null;
  }

  /**
   * Stand and wait to be elected: resolves with the term of office (its fencing token), or
   * rejects — timed out, aborted, resigned, session lost — with the candidacy withdrawn.
   */
  async campaign(value: Value, options: WaitOptions = {}): Promise<Term> {
    if (this.office !== null) throw new WardenError('INVALID_ARGUMENT', `already leading ${this.path} (token ${this.office.term.token}); proclaim to change the value`);
    if (this.campaignRun !== null) throw new WardenError('INVALID_ARGUMENT', `a campaign for ${this.path} is already running`);
    const controller = new AbortController();
    const wait = deadline(options, `campaign for ${this.path}`, [this.session.signal, controller.signal]);
    const run = this.runCampaign(value, wait.signal).finally(() => {
      wait.done();
      this.campaignRun = null;
    });
    this.campaignRun = { controller, settled: run.catch(() => undefined) };
    return run;
  }

  private async runCampaign(value: Value, signal: AbortSignal): Promise<Term> {
    let candidate: { path: string; token: number } | null = null;
    try {
      candidate = await this.enlist(value, signal);
      const myName = nameOf(candidate.path);
      for (let round = 0; round < CAMPAIGN_ROUNDS_MAX; round++) {
        const names = (await this.client.children(this.path, { signal, limit: this.candidatesMax + 1 })).filter(isCandidateName).sort();
        if (names.length > this.candidatesMax) throw new WardenError('RESOURCE_EXHAUSTED', `${this.path} has more than ${this.candidatesMax} candidates`);
        const at = names.indexOf(myName);
        if (at < 0) throw new WardenError('NO_NODE', `the candidacy ${candidate.path} is gone (the session's lease expired or the node was deleted)`);
        if (at === 0) return this.takeOffice(candidate, signal);
        await untilDeleted(this.client, childPath(this.path, names[at - 1]!), signal);
      }
      throw new WardenError('UNAVAILABLE', `campaign for ${this.path}: gave up after ${CAMPAIGN_ROUNDS_MAX} rounds`);
    } catch (error) {
      const failure = reasonOr(signal, error);
      if (!(await this.withdraw())) {
        this.stray = candidate ?? 'unknown';
        throw new WardenError('OUTCOME_UNKNOWN', `${failure instanceof Error ? failure.message : String(failure)}; and the candidacy could not be withdrawn: resign() deletes it (until then, or until the session ends, it stays in line)`);
      }
      throw failure;
    }
  }

  /**
   * Our candidate node, made afresh. One left under our lease (a resign or withdrawal that could
   * not reach the cluster, a create whose outcome was unknown) is deleted first, so every term
   * has a token of its own. The create is not cut short by the caller's signal (as the lock's
   * enqueue): an aborted create could land after the withdrawal and leave a candidacy unseen;
   * the campaign's next read sees the abort, and its withdrawal finds the node by our lease.
   */
  private async enlist(value: Value, signal: AbortSignal): Promise<{ path: string; token: number }> {
    const leftover = await this.ownCandidacy({ signal });
    if (leftover !== null) await this.deleteCandidacy({ path: leftover.path, token: leftover.stat.createRevision }, { signal });
    this.stray = null;
    const made = await this.client.create(childPath(this.path, CANDIDATE_PREFIX), value, { sequential: true, lease: this.session.lease, parents: true });
    return { path: made.path, token: made.stat.createRevision };
  }

  /** Delete a candidate node of ours, only while it is the one we made (its createRevision). */
  private async deleteCandidacy(node: { readonly path: string; readonly token: number }, call: CallOptions): Promise<void> {
    await this.client.txn().if(cmp.createRevision(node.path, '=', node.token)).do(op.delete(node.path)).commit(call);
  }

  private async ownCandidacy(call: CallOptions): Promise<WardenNode | null> {
    let count = 0;
    for await (const node of this.client.range(this.path, call)) {
      if (++count > this.candidatesMax * 2) throw new WardenError('RESOURCE_EXHAUSTED', `${this.path} holds more than ${this.candidatesMax * 2} nodes`);
      if (node.stat.lease === this.session.lease && isCandidateName(nameOf(node.path))) return node;
    }
    return null;
  }

  /** Delete our candidate node(s), with a fresh deadline (the campaign's may be spent). True when none is left. */
  private async withdraw(): Promise<boolean> {
    if (this.session.signal.aborted) return true; // the lease is gone or revoked: so are its nodes
    try {
      const mine = await this.ownCandidacy({});
      if (mine !== null) await this.deleteCandidacy({ path: mine.path, token: mine.stat.createRevision }, {});
      return true;
    } catch {
      return this.session.signal.aborted;
    }
  }

  private takeOffice(candidate: { path: string; token: number }, signal: AbortSignal): Term {
    if (signal.aborted) throw reasonOr(signal, new WardenError('UNAVAILABLE', 'the campaign ended'));
    invariant(candidate.token > this.lastToken, `a new term's token ${candidate.token} must exceed the last one ${this.lastToken}`);
    this.lastToken = candidate.token;
    const controller = new AbortController();
    const term: Term = { token: candidate.token, path: candidate.path, signal: controller.signal };
    this.office = { term, controller };
    // The term ends when our node goes, whoever deletes it: often sooner than the session's keep-alive hears of it.
    untilDeleted(this.client, term.path, controller.signal).then(
      () => this.endTerm('lost', new WardenError('NO_NODE', `the leader's node ${term.path} was deleted (its lease expired or was revoked)`), term),
      () => undefined,
    );
    this.emit('elected', term);
    return term;
  }

  private endTerm(how: 'lost' | 'resigned', error: WardenError, only?: Term): void {
    const office = this.office;
    if (office === null || (only !== undefined && office.term !== only)) return;
    this.office = null;
    office.controller.abort(error);
    if (how === 'lost') this.emit('lost', { term: office.term, error });
    else this.emit('resigned', office.term);
  }

  /** Set the leader's value, only while still leading (fenced by the term's token). Answers the write's revision. */
  async proclaim(value: Value, call: CallOptions = {}): Promise<number> {
    const office = this.office;
    if (office === null) throw new WardenError('NO_NODE', `not the leader of ${this.path}`);
    const { path, token } = office.term;
    const result = await this.client.txn().if(cmp.createRevision(path, '=', token)).do(op.put(path, value)).commit(call);
    if (!result.succeeded) throw this.fencedOut(office.term);
    return result.revision;
  }

  /**
   * Fence a txn by a term of office (this candidate's current one by default): it also compares
   * "the leader's node exists with the term's token as its createRevision", and its else branch
   * reads that node. A txn of a term that has ended is refused whole (NO_NODE; nothing applies,
   * not even its else ops) — `fencedTxn` turns that into the term's end. A txn whose own
   * compares fail answers `succeeded: false` with one extra result at the end (the node read).
   */
  guard<B extends TxnBuilder<unknown>>(txn: B, term: Term | null = this.term): B {
    if (term === null) throw new WardenError('NO_NODE', `not the leader of ${this.path}`);
    return guardTxn(txn, term);
  }

  /** A txn builder whose commit is fenced by the current term: NO_NODE (nothing applied, the term ended) once it is over. */
  fencedTxn(): TxnBuilder<TxnResult> {
    return fencedTxnBuilder<Term>({
      client: this.client,
      current: () => {
        if (this.term === null) throw new WardenError('NO_NODE', `not the leader of ${this.path}`);
        return this.term;
      },
      fencedOut: (term) => this.fencedOut(term),
    });
  }

  /** Put `value` at `path` only while this candidate leads; NO_NODE (nothing written, the term ended) otherwise. */
  fencedPut(path: string, value: Value, call: CallOptions = {}): Promise<WriteResult> {
    return fencedPutWith(this.fencedTxn(), path, value, call);
  }

  /** The term was fenced out at the cluster: it has ended (heard as `lost`). */
  private fencedOut(term: Term): WardenError {
    const error = new WardenError('NO_NODE', `the term of office with token ${term.token} has ended: ${term.path} is gone; nothing was written`);
    this.endTerm('lost', error, term);
    return error;
  }

  /**
   * Step down (or stop campaigning): the term ends first, then the node is deleted so the next
   * candidate leads. If the delete fails, the node is remembered: calling resign() again deletes
   * it (as does the next campaign), and until then it keeps the line behind it waiting.
   */
  async resign(call: CallOptions = {}): Promise<void> {
    const run = this.campaignRun;
    if (run !== null) {
      run.controller.abort(new WardenError('UNAVAILABLE', `campaign for ${this.path}: resigned`));
      await run.settled; // the campaign withdraws its own candidacy (or leaves it as a stray)
    }
    const office = this.office;
    if (office !== null) {
      this.stray = { path: office.term.path, token: office.term.token };
      this.endTerm('resigned', new WardenError('NO_NODE', `resigned from ${this.path}`));
    }
    const stray = this.stray;
    if (stray === null) return;
    if (this.session.signal.aborted) {
      this.stray = null; // the lease is gone or revoked: so are its nodes
      return;
    }
    if (stray === 'unknown') {
      const mine = await this.ownCandidacy(call);
      if (mine !== null) await this.deleteCandidacy({ path: mine.path, token: mine.stat.createRevision }, call);
    } else {
      await this.deleteCandidacy(stray, call);
    }
    if (this.stray === stray) this.stray = null;
  }

  /** The current leader (one linearizable read), or null when no one stands. */
  async leader(call: CallOptions = {}): Promise<Leader | null> {
    const nodes: WardenNode[] = [];
    for await (const node of this.client.range(this.path, call)) {
      if (nodes.length >= this.candidatesMax * 2) throw new WardenError('RESOURCE_EXHAUSTED', `${this.path} holds more than ${this.candidatesMax * 2} nodes`);
      nodes.push(node);
    }
    return leaderOf(nodes.filter((n) => n.path === childPath(this.path, nameOf(n.path))));
  }

  /**
   * The leader now, then each change of leader (or of its value; null when no one stands), in
   * revision order, from a read and the children watch from its revision. Ends when `signal`
   * aborts or the loop breaks.
   */
  async *observe(options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<Leader | null, void, undefined> {
    const stop = new AbortController();
    const wait = deadline({}, `observe ${this.path}`, options.signal === undefined ? [stop.signal] : [stop.signal, options.signal]);
    let shown: Leader | null | undefined;
    try {
      for await (const snapshot of childrenSnapshots(this.client, this.path, wait.signal, this.candidatesMax)) {
        const now = leaderOf(snapshot.children.values());
        if (shown !== undefined && now?.path === shown?.path && now?.value === shown?.value) continue;
        shown = now;
        yield now;
      }
    } finally {
      stop.abort();
      wait.done();
    }
  }
}
