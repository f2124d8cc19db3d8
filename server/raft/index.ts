/**
 * The public face of the Raft core: the only module other rooms import from server/raft.
 */
export { Raft } from './raft.js';
export { quorumSize, majorityIndex } from './quorum.js';
export { maySendBeforePersist } from './send-order.js';
export type * from './types.js';
