/**
 * Which of a Ready's messages may leave before the Ready is durable. The persisting contract
 * (raft.ts) says none may; this is its one exception, from the Raft thesis (§10.2.1): a leader
 * may write entries to its own disk in parallel with sending them to followers. Its own copy
 * counts toward commit only together with a follower's acknowledgement, and it can step that
 * acknowledgement only after the caller has finished this Ready, persist included. (With no
 * other member, nothing is sent at all.)
 *
 * Must never: let a message claim anything the sender's disk does not hold yet — a vote, an
 * acknowledgement, or a term newer than the durable one.
 */

import type { Message } from './types.js';

/** True for a leader's Append or Heartbeat in the term already durable on its disk. */
export function maySendBeforePersist(message: Message, durableTerm: number): boolean {
  return (message.type === 'Append' || message.type === 'Heartbeat') && message.term === durableTerm;
}
