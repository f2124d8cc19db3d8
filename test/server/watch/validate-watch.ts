/**
 * A validator of one watch's delivered stream (the frames a client received for one watch id,
 * parsed from their JSON text) against the stream it should have received, for the watch hub's
 * guarantees. Used by the hub's tests (hub.test.ts) and meant for integration tests over real
 * processes too: it knows only the wire form, never the server's objects.
 *
 * What it checks, each violation naming its guarantee:
 * - shape: every frame is for this watch and is an event frame `{watch, revision, events}`, a
 *   progress frame `{watch, revision, progress: true}` or a cancel frame `{watch, canceled: true,
 *   code, reason, resumeRevision}`; an event has a type, a path, a node exactly when it is not a
 *   delete (for that path), a prevNode only for a put or delete (and, when told, exactly then).
 * - ordered: event frames' revisions strictly increase; no frame (event or progress) is below a
 *   revision already delivered.
 * - atomic: no revision in two event frames.
 * - unique: no path twice in one frame; a frame's events are in path order (comparePaths).
 * - cancel: at most one cancel frame, nothing after it, and its resumeRevision is above every
 *   revision delivered before it.
 * - reliable: the revisions and events delivered are exactly the expected ones — all of them, or,
 *   after a cancel, all of those below its resumeRevision (the client resumes from there).
 * - bookmark: when a progress frame at R arrives, every expected revision up to R has been
 *   delivered.
 *
 * `canonical` (optional) maps each event, delivered and expected alike, before the reliable
 * comparison (null leaves it out; a revision left with no event is left out too). The structural
 * checks always look at the frames as they came.
 *
 * Must never: throw on malformed input (that is a violation to report); read a clock; depend on
 * server/ code (the stream is judged by its wire form alone).
 */

import { comparePaths } from '../../../shared/paths.js';

export interface WireStat {
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly childrenVersion: number;
  readonly numChildren: number;
  readonly lease: number | null;
}

export interface WireNode {
  readonly path: string;
  /** base64 */
  readonly value: string;
  readonly stat: WireStat;
}

export interface WireEvent {
  readonly type: 'create' | 'put' | 'delete';
  readonly path: string;
  readonly node?: WireNode;
  readonly prevNode?: WireNode;
}

/** One revision's events for this watch, in path order. */
export interface ExpectedRevision {
  readonly revision: number;
  readonly events: readonly WireEvent[];
}

export interface ValidateOptions {
  /** The id every frame must carry; default: the first frame's. */
  readonly watchId?: number;
  /** Whether the watch asked for prevNode: then every put and delete carries it, else none does. Unset: not checked. */
  readonly prevNode?: boolean;
  /** Applied to delivered and expected events alike before the reliable comparison; null drops the event. */
  readonly canonical?: (event: WireEvent, revision: number) => WireEvent | null;
}

/** A violation: which guarantee, and what was seen. */
export type Violation = string;

/** The violations of one watch's frames against the expected stream; empty when the stream is right. */
export function validateWatchStream(frames: readonly unknown[], expected: readonly ExpectedRevision[], options: ValidateOptions = {}): Violation[] {
  const violations: Violation[] = [];
  const watchId = options.watchId ?? (isRecord(frames[0]) ? frames[0]['watch'] : undefined);
  const delivered: ExpectedRevision[] = [];
  /** The highest revision any frame carried so far (events or progress). */
  let highest = -Infinity;
  let lastEventRevision = -Infinity;
  let cancel: { index: number; resumeRevision: number } | null = null;
  const progressAt: { index: number; revision: number; deliveredBefore: Set<number> }[] = [];

  for (const [index, frame] of frames.entries()) {
    const at = `frame ${index}`;
    if (!isRecord(frame)) {
      violations.push(`shape: ${at} is not an object: ${show(frame)}`);
      continue;
    }
    if (frame['watch'] !== watchId) violations.push(`shape: ${at} is for watch ${show(frame['watch'])}, not ${show(watchId)}`);
    if (cancel !== null) violations.push(`cancel: ${at} arrived after the cancel frame (frame ${cancel.index}): ${show(frame)}`);
    if (frame['canceled'] === true) {
      const resume = frame['resumeRevision'];
      if (typeof frame['code'] !== 'string' || typeof frame['reason'] !== 'string' || !isRevision(resume)) {
        violations.push(`shape: ${at} is a cancel frame without a code, a reason and an integer resumeRevision: ${show(frame)}`);
        continue;
      }
      if (cancel !== null) continue;
      if (resume <= lastEventRevision || resume <= highest) {
        violations.push(`cancel: ${at} resumes at ${resume}, but revision ${Math.max(lastEventRevision, highest)} was already delivered`);
      }
      cancel = { index, resumeRevision: resume };
      continue;
    }
    const revision = frame['revision'];
    if (!isRevision(revision)) {
      violations.push(`shape: ${at} has no integer revision: ${show(frame)}`);
      continue;
    }
    if (frame['progress'] === true) {
      if ('events' in frame) violations.push(`shape: ${at} is a progress frame with events: ${show(frame)}`);
      if (revision < highest) violations.push(`ordered: progress ${at} at revision ${revision} is below revision ${highest}, already delivered`);
      highest = Math.max(highest, revision);
      progressAt.push({ index, revision, deliveredBefore: new Set(delivered.map((d) => d.revision)) });
      continue;
    }
    const events = frame['events'];
    if (!Array.isArray(events) || events.length === 0) {
      violations.push(`shape: ${at} is neither progress nor cancel and has no events: ${show(frame)}`);
      continue;
    }
    if (revision === lastEventRevision) violations.push(`atomic: revision ${revision} arrived in two frames (the second is ${at})`);
    else if (revision < lastEventRevision) violations.push(`ordered: ${at} at revision ${revision} came after revision ${lastEventRevision}`);
    else if (revision <= highest) violations.push(`ordered: ${at} at revision ${revision} came after a progress frame at ${highest}`);
    lastEventRevision = Math.max(lastEventRevision, revision);
    highest = Math.max(highest, revision);
    const list: WireEvent[] = [];
    let previousPath: string | null = null;
    events.forEach((event: unknown, position: number) => {
      const problem = eventProblem(event, options.prevNode);
      if (problem !== null) {
        violations.push(`shape: ${at} event ${position}: ${problem}: ${show(event)}`);
        return;
      }
      const wire = event as WireEvent;
      if (previousPath !== null) {
        const order = comparePaths(previousPath, wire.path);
        if (order === 0) violations.push(`unique: ${at} (revision ${revision}) has ${wire.path} twice`);
        else if (order > 0) violations.push(`unique: ${at} (revision ${revision}) has ${wire.path} after ${previousPath}: not in path order`);
      }
      previousPath = wire.path;
      list.push(wire);
    });
    delivered.push({ revision, events: list });
  }

  // Reliable: exactly the expected revisions and events (below the resume point after a cancel).
  const limit = cancel === null ? Infinity : cancel.resumeRevision;
  const canonical = options.canonical;
  const canon = (stream: readonly ExpectedRevision[]): ExpectedRevision[] =>
    stream
      .map(({ revision, events }) => ({ revision, events: canonical === undefined ? [...events] : events.flatMap((e) => canonical(e, revision) ?? []) }))
      .filter((entry) => entry.events.length > 0);
  const got = canon(delivered);
  const want = canon(expected.filter((entry) => entry.revision < limit));
  const wantByRevision = new Map(want.map((entry) => [entry.revision, entry]));
  const gotByRevision = new Map(got.map((entry) => [entry.revision, entry]));
  for (const entry of want) {
    const seen = gotByRevision.get(entry.revision);
    if (seen === undefined) violations.push(`reliable: revision ${entry.revision} was never delivered; expected ${show(entry.events)}`);
    else if (stableJson(seen.events) !== stableJson(entry.events)) violations.push(`reliable: revision ${entry.revision} delivered ${show(seen.events)}, expected ${show(entry.events)}`);
  }
  for (const entry of got) {
    if (!wantByRevision.has(entry.revision)) violations.push(`reliable: revision ${entry.revision} was delivered but not expected: ${show(entry.events)}`);
  }

  // Bookmark: a progress frame at R vouches for every expected revision up to R.
  for (const { index, revision, deliveredBefore } of progressAt) {
    const missing = want.filter((entry) => entry.revision <= revision && !deliveredBefore.has(entry.revision)).map((entry) => entry.revision);
    if (missing.length > 0) violations.push(`bookmark: progress frame ${index} at revision ${revision} came before revisions ${missing.join(', ')}`);
  }
  return violations;
}

/** The event frames of a stream at revisions >= `fromRevision`, as the expectation for a watch resumed there. */
export function eventFramesFrom(frames: readonly unknown[], fromRevision: number): ExpectedRevision[] {
  const out: ExpectedRevision[] = [];
  for (const frame of frames) {
    if (!isRecord(frame) || !Array.isArray(frame['events']) || !isRevision(frame['revision'])) continue;
    if (frame['revision'] >= fromRevision) out.push({ revision: frame['revision'], events: frame['events'] as WireEvent[] });
  }
  return out;
}

/** The cancel frame of a stream, if there is one. */
export function cancelFrameOf(frames: readonly unknown[]): { code: string; reason: string; resumeRevision: number } | null {
  for (const frame of frames) {
    if (isRecord(frame) && frame['canceled'] === true) return frame as unknown as { code: string; reason: string; resumeRevision: number };
  }
  return null;
}

/** JSON with object keys sorted, so two events compare by content, not by key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (!isRecord(inner) || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.keys(inner).sort().map((key) => [key, inner[key]]));
  });
}

function eventProblem(event: unknown, prevNode: boolean | undefined): string | null {
  if (!isRecord(event)) return 'not an object';
  const type = event['type'];
  const path = event['path'];
  if (type !== 'create' && type !== 'put' && type !== 'delete') return `unknown type ${show(type)}`;
  if (typeof path !== 'string') return 'no path';
  const node = event['node'];
  if (type === 'delete' && node !== undefined) return 'a delete carries a node';
  if (type !== 'delete' && !isNodeOf(node, path)) return `a ${type} without a node for ${path}`;
  const prev = event['prevNode'];
  if (prev !== undefined && !isNodeOf(prev, path)) return `prevNode is not a node for ${path}`;
  if (type === 'create' && prev !== undefined) return 'a create carries a prevNode';
  if (prevNode === false && prev !== undefined) return 'prevNode delivered though not asked for';
  if (prevNode === true && type !== 'create' && prev === undefined) return `a ${type} without the prevNode asked for`;
  return null;
}

function isNodeOf(node: unknown, path: string): boolean {
  if (!isRecord(node) || node['path'] !== path || typeof node['value'] !== 'string' || !isRecord(node['stat'])) return false;
  const stat = node['stat'];
  return ['createRevision', 'modRevision', 'version', 'childrenVersion', 'numChildren'].every((key) => Number.isInteger(stat[key]));
}

function isRevision(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function show(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 400 ? `${text.slice(0, 400)}…` : text;
  } catch {
    return String(value);
  }
}
