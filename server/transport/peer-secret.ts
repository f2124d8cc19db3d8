/**
 * The cluster secret (`--peer-secret-file`): without peer TLS, what proves a peer connection
 * comes from a member. A dialler's hello carries its time, a fresh nonce and an HMAC-SHA256 of
 * them under the secret (bound to who speaks to whom); the member dialled checks it, refuses a
 * proof it has seen or one outside the time window, and answers with an HMAC over the dialler's
 * nonce, so the dialler knows the other end holds the secret too. Without TLS the frames after
 * the hello are not protected: this keeps strangers out, not an attacker on the wire (that
 * needs peer TLS).
 *
 * Must never: accept a hello without a valid proof; accept the same proof twice; compare
 * proofs but in constant time; keep more nonces than its bound.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../raft/types.js';

/** A hello's time may be this far from ours (clock skew between members, plus the network). */
const WINDOW_MS = 60_000;
/** Nonces remembered (each for the window): past this, the oldest are forgotten — and their hellos are old anyway. */
const NONCES_MAX = 100_000;

export interface HelloProof {
  readonly ts: number;
  readonly nonce: string;
  readonly proof: string;
}

export class PeerSecret {
  /** Nonces of accepted hellos, oldest first, with when they may be forgotten. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly key: Uint8Array,
    private readonly nowMs: () => number = () => Date.now(),
  ) {
    if (key.length < 16) throw new Error('--peer-secret-file: the secret must hold at least 16 bytes');
  }

  /** What a dialler's hello from `from` to `to` carries. */
  helloProof(from: NodeId, to: NodeId): HelloProof {
    const ts = this.nowMs();
    const nonce = randomBytes(16).toString('hex');
    return { ts, nonce, proof: this.mac('hello', from, to, String(ts), nonce) };
  }

  /** Null if the hello's proof is good (and now spent), else why it is refused. */
  checkHello(from: NodeId, to: NodeId, hello: Partial<HelloProof>): string | null {
    const { ts, nonce, proof } = hello;
    if (typeof ts !== 'number' || typeof nonce !== 'string' || typeof proof !== 'string') return 'the hello carries no proof of the cluster secret';
    const now = this.nowMs();
    if (Math.abs(now - ts) > WINDOW_MS) return `the hello's time is ${Math.round((ts - now) / 1000)} s from ours (at most ${WINDOW_MS / 1000} s)`;
    if (!same(proof, this.mac('hello', from, to, String(ts), nonce))) return 'the hello does not prove the cluster secret';
    this.forgetOld(now);
    if (this.seen.has(nonce)) return 'the hello repeats one already accepted';
    this.seen.set(nonce, now + 2 * WINDOW_MS);
    return null;
  }

  /** The answer of the member dialled: an HMAC over the dialler's nonce. */
  replyProof(from: NodeId, to: NodeId, nonce: string): string {
    return this.mac('reply', from, to, nonce);
  }

  checkReply(from: NodeId, to: NodeId, nonce: string, proof: unknown): boolean {
    return typeof proof === 'string' && same(proof, this.replyProof(from, to, nonce));
  }

  private mac(...parts: string[]): string {
    return createHmac('sha256', this.key).update(parts.join('\u0000')).digest('hex');
  }

  private forgetOld(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until > now && this.seen.size < NONCES_MAX) break;
      this.seen.delete(nonce);
    }
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
