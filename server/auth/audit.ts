/**
 * The audit log: one structured line (pino) per security-relevant act — every authentication
 * (accepted or refused), every auth, user, role and permission change, every compaction, every
 * request refused for want of permission — naming the user, the source address and the outcome.
 * It is its own stream (a file, `--audit-log`), apart from the operational log, so it can be
 * shipped, kept and protected on its own terms.
 *
 * Must never: write a password or a token; block the event loop on its file (pino writes
 * asynchronously); throw into a request (a failing audit file is reported on the main log).
 */

import { pino, type Logger } from 'pino';

export interface AuditEvent {
  /** What was done: authenticate, authEnable, userAdd, roleGrant, compact, denied… */
  readonly action: string;
  /** Who did it: the authenticated user, or who it claimed to be; null if unknown. */
  readonly user: string | null;
  /** The client's address (host:port). */
  readonly source: string;
  readonly outcome: 'ok' | 'refused';
  /** The error code, if refused. */
  readonly code?: string;
  /** What it was done to (a user, a role, a path, a revision). */
  readonly target?: Record<string, unknown>;
  readonly reason?: string;
}

export interface AuditLog {
  record(event: AuditEvent): void;
  close(): Promise<void>;
}

/** An audit log appending to `file`; `onError` hears of a failing file. */
export function fileAuditLog(file: string, member: string, onError: (error: Error) => void): AuditLog {
  const destination = pino.destination({ dest: file, mkdir: true, sync: false });
  destination.on('error', onError);
  const logger: Logger = pino({ base: { member }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    record: (event) => logger.info({ audit: true, ...event }),
    close: () =>
      new Promise<void>((resolve) => {
        destination.flush?.(() => {
          destination.end();
          resolve();
        });
      }),
  };
}

/** An audit log that keeps events in memory (tests, and members run without a data directory). */
export function memoryAuditLog(): AuditLog & { readonly events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, record: (event) => void events.push(event), close: () => Promise.resolve() };
}
