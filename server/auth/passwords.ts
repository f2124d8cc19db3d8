/**
 * Password hashing for users: scrypt (memory-hard, salted, Node's own crypto — no dependency),
 * stored as `scrypt$N$r$p$salt$hash`, so parameters can be raised later and old hashes still
 * verify. Hashing runs on libuv's thread pool, which the member's disk work shares (WAL
 * fdatasync, RocksDB): one hash at a time, and a bounded queue behind it, so a flood of logins
 * slows only the logins (they are refused RESOURCE_EXHAUSTED past the queue), never a commit.
 *
 * Must never: keep a password in clear past the call; compare hashes in anything but constant
 * time; run more than one scrypt at once; queue more than its bound.
 */

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** 2^14 × 8 × 128 bytes = 16 MiB per hash, ~50 ms on this class of machine. */
const N = 16_384;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** Longest password taken: scrypt's cost does not grow with it, but frames should not carry essays. */
export const PASSWORD_CHARS_MAX = 1_024;

export class QueueFull extends Error {}

export class PasswordHasher {
  private running = false;
  private readonly queue: (() => void)[] = [];
  /** A hash no password matches, for unknown users: their check costs what a real one does. */
  private decoy: Promise<string> | null = null;

  constructor(private readonly queueMax: number) {}

  /** Checks waiting now (for /status). */
  get waiting(): number {
    return this.queue.length;
  }

  /** A new salted hash of `password`. Rejects with QueueFull past the queue's bound. */
  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const key = await this.derive(password, salt, N, R, P);
    return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
  }

  /** Whether `password` matches `stored` (null: a user with no password, or no such user — the check still costs a hash). */
  async verify(password: string, stored: string | null): Promise<boolean> {
    const parsed = stored === null ? null : parse(stored);
    if (parsed === null) {
      this.decoy ??= this.hash('decoy').catch((error: unknown) => {
        this.decoy = null; // a full queue now is no reason to fail every later unknown user
        throw error;
      });
      await this.verify(password, await this.decoy);
      return false;
    }
    const key = await this.derive(password, parsed.salt, parsed.n, parsed.r, parsed.p);
    return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  }

  private async derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
    await this.turn();
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        scrypt(password, salt, KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (error, key) => (error === null ? resolve(key) : reject(error)));
      });
    } finally {
      this.running = false;
      this.queue.shift()?.();
    }
  }

  private turn(): Promise<void> {
    if (!this.running) {
      this.running = true;
      return Promise.resolve();
    }
    if (this.queue.length >= this.queueMax) return Promise.reject(new QueueFull(`${this.queue.length} password checks are waiting already`));
    return new Promise((resolve) =>
      this.queue.push(() => {
        this.running = true;
        resolve();
      }),
    );
  }
}

function parse(stored: string): { n: number; r: number; p: number; salt: Buffer; key: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  // A hash from the replicated state is trusted in shape, not in cost: bounded here too.
  if (!Number.isInteger(n) || n < 2 || n > 1 << 17 || (n & (n - 1)) !== 0 || !Number.isInteger(r) || r < 1 || r > 16 || !Number.isInteger(p) || p < 1 || p > 4) return null;
  // At most 64 MiB and 4 passes of work per check, whatever a restored store holds.
  if (128 * n * r > 64 * 1024 * 1024) return null;
  return { n, r, p, salt: Buffer.from(parts[4]!, 'base64'), key: Buffer.from(parts[5]!, 'base64') };
}
