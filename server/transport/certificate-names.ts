/**
 * The member names a peer certificate carries: its subjectAltName DNS entries. With peer TLS a
 * member speaks for a name only if its certificate carries it (the CA vouches for the
 * certificate, this for whom it speaks).
 *
 * Must never: read a name from anywhere but DNS entries of the subjectAltName (a CN is not a SAN).
 */

import type { PeerCertificate } from 'node:tls';

/** The member names a certificate carries: its subjectAltName DNS entries. */
export function certificateNames(cert: PeerCertificate | null): string[] {
  const san = cert?.subjectaltname;
  if (typeof san !== 'string') return [];
  return san
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length));
}
