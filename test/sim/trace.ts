/**
 * One readable line per Raft message, for replaying a failing seed by eye.
 *
 * Must never: affect the simulation (it only formats).
 */

import type { Message } from '../../server/raft/index.js';

export function describeMessage(m: Message): string {
  const head = `${m.from} → ${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'PreVote':
    case 'Vote':
      return `${head} last=${m.lastLogIndex}/t${m.lastLogTerm}${m.type === 'Vote' && m.transfer ? ' (transfer)' : ''}`;
    case 'PreVoteResp':
    case 'VoteResp':
      return `${head} ${m.reject ? 'REJECT' : 'GRANT'}`;
    case 'Append': {
      const entries = m.entries.map((e) => `${e.index}/t${e.term}${e.type === 'noop' ? '(noop)' : ''}`).join(',');
      return `${head} prev=${m.prevLogIndex}/t${m.prevLogTerm} entries=[${entries}] commit=${m.commit}`;
    }
    case 'AppendResp':
      return m.reject ? `${head} REJECT index=${m.index} hint=${m.rejectHint}/t${m.hintTerm}` : `${head} ok index=${m.index}`;
    case 'Heartbeat':
      return `${head} commit=${m.commit}${m.readRound === null ? '' : ` read#${m.readRound}`}`;
    case 'HeartbeatResp':
      return `${head}${m.readRound === null ? '' : ` read#${m.readRound}`}`;
    case 'Snapshot':
      return `${head} snapshot=${m.snapshot.meta.index}/t${m.snapshot.meta.term}`;
    case 'TimeoutNow':
      return head;
    case 'ReadIndex':
      return `${head} request=${m.requestId}`;
    case 'ReadIndexResp':
      return `${head} request=${m.requestId} index=${m.index}`;
  }
}
