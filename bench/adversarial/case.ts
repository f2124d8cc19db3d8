/**
 * What a case of `npm run bench:adversarial` is: its name and parameters, an optional setup
 * (not measured), and the attack, which answers its own figures as details (JSON) and rows
 * (the printed table). The runner (bench/adversarial.ts) gives it a fresh cluster and measures
 * around the attack.
 *
 * Must never: import a server module (the wire protocol only, so any version can be measured).
 */

import type { Cluster } from '../../test/integration/cluster.js';
import { brief, codeOf, type Answer, type Conn } from '../../test/adversarial/conn.js';

export type Row = readonly [string, string];

export interface Ctx {
  readonly cluster: Cluster;
  leader: string;
  leaderUrl: string;
  followerUrl: string;
  /** A connection closed by the runner after the case. */
  open(url: string, options?: { maxPayload?: number }): Promise<Conn>;
  /** What setup hands to the attack. */
  readonly state: Record<string, unknown>;
}

export interface AttackOutcome {
  readonly details: Record<string, unknown>;
  readonly rows: Row[];
}

export interface CaseSpec {
  readonly name: string;
  readonly label: string;
  readonly params: Record<string, unknown>;
  /** The attack's own bound (it is raced against this). */
  readonly limitMs: number;
  setup?(ctx: Ctx): Promise<void>;
  attack(ctx: Ctx): Promise<AttackOutcome>;
}

export const round1 = (x: number): number => Math.round(x * 10) / 10;
export const ms = (x: number | null | undefined): string =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x >= 100 ? Math.round(x) : x.toFixed(1)} ms`;
export const sleep = (t: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, t));
export const pct = (sorted: readonly number[], q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

/** Throws unless `answer` is ok (a setup step that failed). */
export function must(answer: Answer, what: string): Answer {
  if (codeOf(answer) !== null) throw new Error(`${what}: ${brief(answer)}`);
  return answer;
}
