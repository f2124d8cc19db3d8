/**
 * The cluster's alarms (replicated, like etcd's): a member raises one when it crosses a line it
 * watches — today NO_SPACE, its store past the space quota — and clears it itself once back under
 * the low-water mark. While a NO_SPACE alarm is active the state machine refuses the writes that
 * add data (put, create, a transaction that puts or creates, a lease grant) with NO_SPACE; deletes,
 * compactions, revokes, keep-alives and reads go on, so the space can be won back.
 *
 * Pattern: a small table in the replicated state, changed only by committed `alarm` entries
 * (which members propose, never clients); written whole to the store when it changes.
 *
 * Must never: hold more than ALARMS_MAX alarms (one per member and kind), or change but through
 * apply (every member must hold the same alarms at the same index).
 */

import type { ChangeTracker } from './changes.js';

export type AlarmKind = 'NO_SPACE';
export const ALARM_KINDS: readonly AlarmKind[] = ['NO_SPACE'];

export interface Alarm {
  readonly member: string;
  readonly kind: AlarmKind;
  /** Log time the alarm was raised. */
  readonly raisedAtMs: number;
  /** What the member measured, and its quota, when it raised the alarm. */
  readonly usedBytes: number;
  readonly quotaBytes: number;
}

export interface AlarmCommand {
  readonly op: 'alarm';
  readonly action: 'raise' | 'clear';
  readonly member: string;
  readonly kind: AlarmKind;
  readonly usedBytes?: number;
  readonly quotaBytes?: number;
}

/** One alarm per member and kind: a cluster has at most a few dozen members. */
export const ALARMS_MAX = 256;

export class AlarmTable {
  private readonly alarms = new Map<string, Alarm>();

  constructor(private readonly changes: ChangeTracker | null = null) {}

  static restore(alarms: readonly Alarm[], changes: ChangeTracker | null = null): AlarmTable {
    const table = new AlarmTable(changes);
    for (const alarm of alarms) table.alarms.set(keyOf(alarm.member, alarm.kind), alarm);
    return table;
  }

  /** Every alarm, by member then kind. */
  list(): Alarm[] {
    return [...this.alarms.values()].sort((a, b) => (a.member === b.member ? a.kind.localeCompare(b.kind) : a.member < b.member ? -1 : 1));
  }

  /** An alarm of `kind` is active on some member. */
  active(kind: AlarmKind): Alarm | undefined {
    // Asked at every apply: nothing to sort in the usual case. (Sorted otherwise: the refusal
    // names the alarm, and every member — restarted from its store or not — must name the same.)
    if (this.alarms.size === 0) return undefined;
    for (const alarm of this.list()) if (alarm.kind === kind) return alarm;
    return undefined;
  }

  get empty(): boolean {
    return this.alarms.size === 0;
  }

  /** Forget every alarm of `member` (it was removed from the cluster). */
  clearMember(member: string): void {
    let changed = false;
    for (const [key, alarm] of [...this.alarms]) {
      if (alarm.member !== member) continue;
      this.alarms.delete(key);
      changed = true;
    }
    if (changed && this.changes !== null) this.changes.alarms = true;
  }

  /** Apply a committed alarm command; answers whether the table changed. */
  apply(command: AlarmCommand, nowMs: number): boolean {
    const key = keyOf(command.member, command.kind);
    if (command.action === 'clear') {
      if (!this.alarms.delete(key)) return false;
    } else {
      if (this.alarms.has(key) || this.alarms.size >= ALARMS_MAX) return false;
      this.alarms.set(key, { member: command.member, kind: command.kind, raisedAtMs: nowMs, usedBytes: command.usedBytes ?? 0, quotaBytes: command.quotaBytes ?? 0 });
    }
    if (this.changes !== null) this.changes.alarms = true;
    return true;
  }
}

function keyOf(member: string, kind: AlarmKind): string {
  return `${member}\u0000${kind}`;
}

/** The alarm table's store record: [[member, kind, raisedAtMs, usedBytes, quotaBytes], …]. */
export function alarmsFields(alarms: readonly Alarm[]): unknown {
  return alarms.map((a) => [a.member, a.kind, a.raisedAtMs, a.usedBytes, a.quotaBytes]);
}

export function decodeAlarms(fields: unknown, where: () => string): Alarm[] {
  if (!Array.isArray(fields)) throw new Error(`${where()}: not an alarm table`);
  return fields.map((f) => {
    if (!Array.isArray(f) || f.length !== 5 || typeof f[0] !== 'string' || !ALARM_KINDS.includes(f[1] as AlarmKind) || !f.slice(2).every((n) => Number.isSafeInteger(n))) throw new Error(`${where()}: not an alarm`);
    return { member: f[0] as string, kind: f[1] as AlarmKind, raisedAtMs: f[2] as number, usedBytes: f[3] as number, quotaBytes: f[4] as number };
  });
}
