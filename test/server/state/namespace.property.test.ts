/**
 * Property tests of the MVCC namespace against the reference model (reference-model.ts): random
 * sequences of create (plain, sequential, with parents, ephemeral), put (with and without
 * ifVersion), delete (with and without recursive and ifVersion), txn (random compares, both
 * branches, ops that fail), compact and lease revocation, over a small path universe so that
 * collisions are the rule. After every command the answer (ok, code, revision, node views,
 * created path), the events, the revision and the compaction mark must equal the model's, and
 * the revision must move by exactly 0 or 1 (1 exactly when there are events), never reusing one.
 * After the sequence: get at every retained revision for every path that ever existed (and the
 * whole universe), the edges of history (COMPACTED below, INVALID_ARGUMENT above), childrenOf,
 * whole-tree ranges at every retained revision, subtree ranges paged with several limits and
 * continuations, and the paths of each lease.
 *
 * Every fc.assert has a fixed seed, so CI runs the same cases; a failure prints the seed and
 * path to replay (`fc.assert(..., { seed, path })`) and the shrunk command list.
 *
 * Must never: compare error messages (prose); use an unseeded run; read a clock or Math.random.
 */

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Namespace, type NamespaceOptions } from '../../../server/state/namespace.js';
import { ALL_LEASES, UNIVERSE, commandsArb, describeCommand, leaseExists, materialize, type GenCommand } from './arbitraries.js';
import { ReferenceModel } from './reference-model.js';
import { StoreBacked } from './store-backed.js';

/** An answer with its error message checked for presence and then dropped. */
function withoutMessage<T>(answer: T): unknown {
  const record = answer as { ok?: unknown; message?: unknown; code?: unknown; revision?: unknown };
  if (record.ok !== false) return answer;
  if (typeof record.message !== 'string' || record.message.length === 0) throw new Error(`error answer without a message: ${JSON.stringify(answer)}`);
  const { message: _message, ...rest } = record;
  return rest;
}

/** Strict deep equality (undefined-valued keys, prototypes and typed arrays included). */
function same(actual: unknown, expected: unknown, where: string): void {
  if (isDeepStrictEqual(actual, expected)) return;
  expect(actual, where).toStrictEqual(expected);
  throw new Error(`${where}: not strictly equal\n${JSON.stringify(actual)}\n${JSON.stringify(expected)}`);
}

/**
 * The namespace under test: held only in memory, or inside a state machine kept in a store and
 * rebuilt from the store alone before every `restartEvery`th command. The store-backed one gets
 * leases 1 and 2 from its own lease table (granted for a day, never expired), as leaseExists
 * has them.
 */
class Subject {
  private readonly memory: Namespace | null;
  private readonly store: StoreBacked | null;

  constructor(
    options: NamespaceOptions,
    private readonly restartEvery: number | undefined,
  ) {
    if (restartEvery === undefined) {
      this.memory = new Namespace(options);
      this.store = null;
      return;
    }
    this.memory = null;
    const { leaseExists: _leaseExists, ...rest } = options;
    this.store = new StoreBacked(rest);
    for (const index of [1, 2]) {
      const granted = this.store.apply({ index, timeMs: 0, command: { op: 'leaseGrant', ttlMs: 86_400_000 } }).result;
      if (!granted.ok || granted.op !== 'leaseGrant' || granted.lease.id !== index) throw new Error(`lease ${index} not granted`);
    }
  }

  get namespace(): Namespace {
    return this.memory ?? this.store!.sm.namespace;
  }

  /** Before command `index`: a restart, when it is time for one. */
  before(index: number): void {
    if (this.store !== null && index % this.restartEvery! === 0) this.store.restart();
  }

  /** After a command: write what it changed. */
  after(): void {
    this.store?.persist();
  }
}

/** Apply the commands to a namespace and to the model, comparing everything as it goes. */
function runAgainstModel(commands: readonly GenCommand[], options: NamespaceOptions, restartEvery?: number): { namespace: Namespace; model: ReferenceModel } {
  const subject = new Subject(options, restartEvery);
  const model = new ReferenceModel(options);
  let lastEventRevision = 0;
  commands.forEach((generated, index) => {
    subject.before(index);
    const namespace = subject.namespace;
    const command = materialize(generated, model.revision);
    const where = `command ${index} ${describeCommand(command)}`;
    const before = namespace.revision;
    const actual = command.op === 'revokeLease' ? namespace.deleteLeaseNodes([command.lease]) : namespace.apply(command);
    const expected = command.op === 'revokeLease' ? model.deleteLeaseNodes(command.lease) : model.apply(command);
    subject.after();
    same(withoutMessage(actual.result), expected.result, `${where}: result`);
    same(actual.events, expected.events, `${where}: events`);
    same(namespace.revision, model.revision, `${where}: revision`);
    same(namespace.compactRevision, model.compactRevision, `${where}: compactRevision`);
    // Dense and never reused: +1 exactly when something changed (events), else unchanged.
    const bumped = actual.events.length > 0;
    if (namespace.revision !== before + (bumped ? 1 : 0)) throw new Error(`${where}: revision went ${before} → ${namespace.revision} with ${actual.events.length} events`);
    if (actual.result.revision !== namespace.revision) throw new Error(`${where}: answered at ${actual.result.revision}, namespace at ${namespace.revision}`);
    for (const event of actual.events) if (event.revision !== namespace.revision) throw new Error(`${where}: event at ${event.revision}, not ${namespace.revision}`);
    if (bumped) {
      if (namespace.revision <= lastEventRevision) throw new Error(`${where}: revision ${namespace.revision} reused`);
      lastEventRevision = namespace.revision;
    }
  });
  if (restartEvery !== undefined) subject.before(0); // the reads below go to a machine rebuilt from the store
  return { namespace: subject.namespace, model };
}

const PAGED_SUBTREES = ['/', '/a', '/a/b', '/b', '/a-b/a'];
const PAGE_LIMITS = [1, 2, 3, 5];
const WHOLE = 1_000_000;

/** Every read the namespace offers, compared with the model over all retained history. */
function compareReads(namespace: Namespace, model: ReferenceModel): void {
  const now = model.revision;
  const low = model.compactRevision;
  const paths = [...new Set([...UNIVERSE, ...model.pathsEverSeen()])];

  for (let revision = low; revision <= now; revision++) {
    for (const path of paths) same(withoutMessage(namespace.get(path, revision)), model.get(path, revision), `get ${path} @${revision}`);
    same(withoutMessage(namespace.range('/', { limit: WHOLE, revision })), model.range('/', { limit: WHOLE, revision }), `range / @${revision}`);
  }
  for (const path of paths) {
    same(withoutMessage(namespace.get(path)), model.get(path), `get ${path} (latest)`);
    same(withoutMessage(namespace.childrenOf(path)), model.childrenOf(path), `childrenOf ${path}`);
    // Pages of children, followed by their continuation, against the model's.
    for (const limit of PAGE_LIMITS) {
      let after: string | undefined;
      for (let page = 0; page < 64; page++) {
        const options = after === undefined ? { limit } : { limit, after };
        const got = namespace.childrenOf(path, options);
        same(withoutMessage(got), model.childrenOf(path, options), `childrenOf ${path} limit ${limit} after ${String(after)}`);
        if (!got.ok || got.next === null) break;
        after = got.next;
      }
    }
  }
  // The edges of history: compacted below, future above.
  for (const revision of [low - 1, now + 1, now + 7]) {
    if (revision < 0) continue;
    same(withoutMessage(namespace.get('/', revision)), model.get('/', revision), `get / @${revision}`);
    same(withoutMessage(namespace.range('/', { limit: 3, revision })), model.range('/', { limit: 3, revision }), `range / @${revision}`);
  }

  const revisions = [...new Set([low, Math.floor((low + now) / 2), now])];
  for (const subtree of PAGED_SUBTREES) {
    for (const revision of revisions) {
      const whole = model.range(subtree, { limit: WHOLE, revision });
      if (!whole.ok) throw new Error(`model refused range ${subtree} @${revision}`);
      for (const limit of PAGE_LIMITS) {
        const collected: unknown[] = [];
        let after: string | undefined;
        for (let page = 0; ; page++) {
          if (page > 200) throw new Error(`range ${subtree} limit ${limit} @${revision}: paging does not end`);
          const options = { limit, revision, ...(after === undefined ? {} : { after }) };
          const actual = namespace.range(subtree, options);
          same(withoutMessage(actual), model.range(subtree, options), `range ${subtree} ${JSON.stringify(options)}`);
          if (!actual.ok) break;
          collected.push(...actual.nodes);
          if (actual.next === null) break;
          after = actual.next;
        }
        same(collected, whole.nodes, `range ${subtree} paged by ${limit} @${revision} vs whole`);
      }
    }
  }
  for (const lease of ALL_LEASES) same(namespace.pathsOfLease(lease), model.pathsOfLease(lease), `pathsOfLease ${lease}`);
}

/** The same properties in memory and kept in a store (restarted from it every 1–8 commands). */
const BACKENDS = [
  { backend: 'in memory', restartEvery: fc.constant(undefined) },
  { backend: 'kept in a store and restarted from it', restartEvery: fc.integer({ min: 1, max: 8 }) },
] as const;

describe.each(BACKENDS)('Namespace against the reference model ($backend)', ({ restartEvery }) => {
  it('agrees on every answer, event and read for random command sequences (values up to 4 bytes, leases 1 and 2)', () => {
    const options: NamespaceOptions = { valueBytesMax: 4, leaseExists };
    fc.assert(
      fc.property(commandsArb(60), restartEvery, (commands, every) => {
        const { namespace, model } = runAgainstModel(commands, options, every);
        compareReads(namespace, model);
      }),
      { seed: 0x3a11ce, numRuns: 1500 },
    );
  });

  it('agrees with automatic compaction (historyRevisions 3) and keeps at least 3 revisions readable', () => {
    const options: NamespaceOptions = { valueBytesMax: 4, leaseExists, historyRevisions: 3 };
    fc.assert(
      fc.property(commandsArb(60), restartEvery, (commands, every) => {
        const { namespace, model } = runAgainstModel(commands, options, every);
        compareReads(namespace, model);
        // Manual compactions may go further; automatic ones never leave fewer than 3 behind.
        const manual = commands.some((command) => command.op === 'compact');
        if (!manual && namespace.compactRevision > 0) expect(namespace.revision - namespace.compactRevision).toBeGreaterThanOrEqual(3);
      }),
      { seed: 0xc0ffee, numRuns: 800 },
    );
  });

  it('agrees over long sequences (up to 200 commands), where counters and history grow', () => {
    const options: NamespaceOptions = { valueBytesMax: 4, leaseExists };
    fc.assert(
      fc.property(commandsArb(200), restartEvery, (commands, every) => {
        const { namespace, model } = runAgainstModel(commands, options, every);
        compareReads(namespace, model);
      }),
      { seed: 0xbeef, numRuns: 150 },
    );
  });
});
