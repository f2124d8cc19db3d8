/**
 * Three contracts of the namespace that callers lean on: an event's prevNode is the node at the
 * previous revision; values are copied on the way in; nonsensical options are refused at once.
 */

import { describe, expect, it } from 'vitest';
import { Namespace } from '../../../server/state/namespace.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('namespace contracts', () => {
  it("gives each event the node as it stood at the previous revision, even in a recursive delete", () => {
    const ns = new Namespace();
    ns.apply({ op: 'put', path: '/a/b', value: bytes('b') });
    ns.apply({ op: 'put', path: '/a/c', value: bytes('c') });
    const { result, events } = ns.apply({ op: 'delete', path: '/a', recursive: true });
    expect(result).toMatchObject({ ok: true, deleted: 3, revision: 3 });
    expect(events.map((e) => `${e.kind} ${e.path}`)).toEqual(['delete /a/c', 'delete /a/b', 'delete /a']);
    const parent = events[2]!;
    // Not the in-command state with its children already gone: no revision ever had that.
    expect(parent.prevNode?.stat).toMatchObject({ numChildren: 2, childrenVersion: 2, createRevision: 1 });
    expect(events.every((e) => e.revision === 3 && e.node === null)).toBe(true);
  });

  it('gives a put event the previous revision’s node even when the same txn changed it first', () => {
    const ns = new Namespace();
    ns.apply({ op: 'put', path: '/x', value: bytes('1') });
    const { events } = ns.apply({
      op: 'txn',
      compare: [],
      success: [
        { op: 'put', path: '/x', value: bytes('2') },
        { op: 'put', path: '/x', value: bytes('3') },
      ],
      failure: [],
    });
    expect(events.map((e) => new TextDecoder().decode(e.prevNode!.value))).toEqual(['1', '1']);
    expect(events.map((e) => new TextDecoder().decode(e.node!.value))).toEqual(['2', '3']);
  });

  it('copies values on the way in, so reusing the buffer cannot rewrite the state or its history', () => {
    const ns = new Namespace();
    const buffer = bytes('first');
    ns.apply({ op: 'create', path: '/k', value: buffer });
    buffer.set(bytes('XXXXX'));
    ns.apply({ op: 'put', path: '/k', value: buffer });
    buffer.set(bytes('YYYYY'));
    const at1 = ns.get('/k', 1);
    const now = ns.get('/k');
    expect(at1.ok && at1.op === 'get' && new TextDecoder().decode(at1.node.value)).toBe('first');
    expect(now.ok && now.op === 'get' && new TextDecoder().decode(now.node.value)).toBe('XXXXX');
  });

  it.each([
    [{ historyRevisions: 0 }, /historyRevisions must be a positive integer/],
    [{ historyRevisions: -3 }, /historyRevisions must be a positive integer/],
    [{ historyRevisions: Number.NaN }, /historyRevisions must be a positive integer/],
    [{ historyRevisions: 2.5 }, /historyRevisions must be a positive integer/],
    [{ valueBytesMax: -1 }, /valueBytesMax must be a non-negative integer/],
  ])('refuses the options %o', (options, message) => {
    expect(() => new Namespace(options)).toThrow(message);
  });
});
