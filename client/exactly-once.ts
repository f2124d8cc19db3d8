/**
 * The client's side of exactly-once writes (Idempotent Receiver): one session per client,
 * registered on the first write with a random nonce (so a register that must be retried answers
 * the same session), its writes numbered 1, 2, 3, … and stamped `{id, seq, ackedThrough,
 * secret}`. `ackedThrough` is the contiguous prefix of seqs that are done — answered, or given
 * up — so the member forgets answers nobody will ask for again. At most `WINDOW` seqs are open
 * past that prefix: the member keeps 1,024 unacknowledged answers per session, and a client that
 * opened more would push out answers it may still need.
 *
 * Must never: reuse a seq for a different write; move `ackedThrough` past a seq still waiting
 * for its answer; open a seq more than WINDOW past `ackedThrough`.
 */

/** Open seqs a session may have past `ackedThrough` (the member keeps 1,024 answers). */
export const WINDOW = 1_000;

export interface Stamp {
  readonly id: number;
  readonly seq: number;
  readonly ackedThrough: number;
  readonly secret: string;
}

export interface Registration {
  readonly clientId: number;
  readonly secret: string;
}

export class WriteSession {
  private nextSeq = 1;
  private acked = 0;
  private readonly open = new Set<number>();
  private readonly waiting: (() => void)[] = [];

  constructor(readonly registration: Registration) {}

  /** A seq for the next write, once the window has room. */
  async begin(): Promise<number> {
    while (this.nextSeq - this.acked > WINDOW) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const seq = this.nextSeq++;
    this.open.add(seq);
    return seq;
  }

  stamp(seq: number): Stamp {
    return { id: this.registration.clientId, seq, ackedThrough: this.acked, secret: this.registration.secret };
  }

  /** `seq` got its answer, or the client gave up on it: it joins the acknowledged prefix when the ones below it have. */
  done(seq: number): void {
    if (!this.open.delete(seq)) return;
    while (this.acked + 1 < this.nextSeq && !this.open.has(this.acked + 1)) this.acked += 1;
    while (this.waiting.length > 0 && this.nextSeq - this.acked <= WINDOW) this.waiting.shift()!();
  }

  get ackedThrough(): number {
    return this.acked;
  }
}

/** A nonce of 32 random hex digits for `register` (crypto.getRandomValues exists in Node 20 and browsers). */
export function randomNonce(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
