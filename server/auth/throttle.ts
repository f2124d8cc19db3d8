/**
 * Slowing password guessing: every failed authentication delays the next attempt for the same
 * user, and for the same source address, by a time that doubles with each failure (from
 * FIRST_DELAY_MS up to MAX_DELAY_MS); and while a user's password is being checked, another
 * attempt for it (or past a few from one address) is refused too, so attempts sent together
 * cannot all slip in before the first failure counts. An attempt inside its delay is refused at
 * once, before any password is hashed — so a guesser costs the member almost nothing, and other users (other
 * names, other addresses) never wait behind it. A success clears the user's and the source's
 * count. Both tables are bounded (the least recently failing entry is forgotten).
 *
 * Must never: hash a password for an attempt inside its delay; grow past its bound.
 */

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 10_000;

interface Failures {
  count: number;
  untilMs: number;
}

/** Password checks under way at once for one user, and from one address: attempts sent together
 * would otherwise all pass the delay before the first failure is counted. */
const CHECKING_PER_USER_MAX = 1;
const CHECKING_PER_SOURCE_MAX = 4;

export class FailureThrottle {
  /** In least-recently-failed order (a failure re-inserts its key at the end). */
  private readonly failures = new Map<string, Failures>();
  /** Checks under way, by key (bounded: at most the hasher's queue plus one). */
  private readonly checking = new Map<string, number>();

  constructor(
    private readonly trackedMax: number,
    private readonly nowMs: () => number,
  ) {}

  /** Milliseconds until `user` from `source` may try again (0: now), and which of them waits. */
  wait(user: string, source: string): { readonly ms: number; readonly who: 'user' | 'source' | null } {
    const now = this.nowMs();
    const byUser = (this.failures.get(userKey(user))?.untilMs ?? 0) - now;
    const bySource = (this.failures.get(sourceKey(source))?.untilMs ?? 0) - now;
    if (byUser <= 0 && bySource <= 0) return { ms: 0, who: null };
    return byUser >= bySource ? { ms: Math.ceil(byUser), who: 'user' } : { ms: Math.ceil(bySource), who: 'source' };
  }

  /**
   * Start a password check for `user` from `source`: false (and nothing started) if one for that
   * user, or CHECKING_PER_SOURCE_MAX from that address, are under way already. `end` it after.
   */
  begin(user: string, source: string): boolean {
    const u = this.checking.get(userKey(user)) ?? 0;
    const s = this.checking.get(sourceKey(source)) ?? 0;
    if (u >= CHECKING_PER_USER_MAX || s >= CHECKING_PER_SOURCE_MAX) return false;
    this.checking.set(userKey(user), u + 1);
    this.checking.set(sourceKey(source), s + 1);
    return true;
  }

  end(user: string, source: string): void {
    for (const key of [userKey(user), sourceKey(source)]) {
      const n = (this.checking.get(key) ?? 1) - 1;
      if (n <= 0) this.checking.delete(key);
      else this.checking.set(key, n);
    }
  }

  /** Milliseconds until `source` may try a token again (0: now): token failures are counted per address only. */
  sourceWait(source: string): number {
    return Math.max(0, Math.ceil((this.failures.get(sourceKey(source))?.untilMs ?? 0) - this.nowMs()));
  }

  sourceFailed(source: string): void {
    this.note(sourceKey(source));
  }

  sourceSucceeded(source: string): void {
    this.failures.delete(sourceKey(source));
  }

  failed(user: string, source: string): void {
    this.note(userKey(user));
    this.note(sourceKey(source));
  }

  succeeded(user: string, source: string): void {
    this.failures.delete(userKey(user));
    this.failures.delete(sourceKey(source));
  }

  get size(): number {
    return this.failures.size;
  }

  private note(key: string): void {
    const known = this.failures.get(key);
    const count = (known?.count ?? 0) + 1;
    this.failures.delete(key);
    this.failures.set(key, { count, untilMs: this.nowMs() + Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(count - 1, 20)) });
    while (this.failures.size > this.trackedMax) this.failures.delete(this.failures.keys().next().value as string);
  }
}

const userKey = (user: string): string => `u\u0000${user}`;
const sourceKey = (source: string): string => `s\u0000${source}`;
