/**
 * Who may join a member's consensus: the check of a hello on an accepted peer connection. It
 * must come from a member of the configuration other than this one; with peer TLS, from a
 * certificate (the peer CA vouched for it) that names that member — or any member's certificate
 * would speak for all the others; with a cluster secret, with a fresh proof of it.
 *
 * Must never: let a frame other than a member's well-proved hello through; trust a name the
 * certificate does not carry.
 */

import type { PeerCertificate } from 'node:tls';
import type { NodeId } from '../raft/types.js';
import { certificateNames } from './certificate-names.js';
import type { PeerSecret } from './peer-secret.js';

export interface HelloContext {
  readonly id: NodeId;
  readonly peers: ReadonlyMap<NodeId, string>;
  /** The connection's certificate with peer TLS (null: none presented); undefined without TLS. */
  readonly certificate: PeerCertificate | null | undefined;
  readonly secret: PeerSecret | undefined;
}

export interface HelloRefusal {
  /** The close reason the stranger reads. */
  readonly reason: string;
  /** The member's log line, and its fields. */
  readonly log: string;
  readonly fields: Record<string, unknown>;
}

/** Why the first frame on an accepted connection does not let it in, or null if it does. */
export function helloRefusal(frame: { readonly k: string; readonly from?: unknown } | null, ctx: HelloContext): HelloRefusal | null {
  const from = frame?.from;
  if (frame?.k !== 'hello' || typeof from !== 'string' || !ctx.peers.has(from) || from === ctx.id) {
    return { reason: 'not a member of this cluster', log: 'a peer connection did not introduce itself as a cluster member', fields: {} };
  }
  if (ctx.certificate !== undefined) {
    const named = certificateNames(ctx.certificate);
    if (!named.includes(from)) {
      return { reason: `the certificate names ${named.join(', ') || 'nothing'}, not ${from}`, log: `a peer said it was ${from} with a certificate that names ${named.join(', ') || 'no member'}`, fields: { claimed: from, certificateNames: named } };
    }
  }
  const refused = ctx.secret?.checkHello(from, ctx.id, frame as Record<string, unknown>) ?? null;
  if (refused !== null) return { reason: refused, log: `a peer said it was ${from}: ${refused}`, fields: { claimed: from, reason: refused } };
  return null;
}
