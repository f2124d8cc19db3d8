/**
 * What the path trace (server/metrics/path-trace.ts) notes of a peer frame going out or coming
 * in: forwarded writes and their answers by forward id, Appends carrying entries by their last
 * index, commit news by commit index, acknowledgements by the index acknowledged.
 *
 * Must never: be called unless `tracing` is on (callers test it first: the frames are hot).
 */

import { tracePath } from '../metrics/path-trace.js';
import type { Frame } from './peer-codec.js';

export function traceFrame(frame: Frame, direction: 'out' | 'in'): void {
  const out = direction === 'out';
  switch (frame.k) {
    case 'fwd':
      tracePath(out ? 'fwd.sent' : 'fwd.recv', frame.id);
      return;
    case 'fwd-ok':
    case 'fwd-err':
      tracePath(out ? 'fwd.answered' : 'fwd.answer.recv', frame.id);
      return;
    case 'raft': {
      const m = frame.m;
      if (m.type === 'Append' && m.entries.length > 0) tracePath(out ? 'append.sent' : 'append.recv', m.entries[m.entries.length - 1]!.index);
      else if ((m.type === 'Append' || m.type === 'Heartbeat') && !out) tracePath('commit.recv', m.commit);
      else if (m.type === 'AppendResp' && !m.reject) tracePath(out ? 'ack.sent' : 'ack.recv', m.index);
      return;
    }
    default:
      return;
  }
}
