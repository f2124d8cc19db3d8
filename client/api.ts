/**
 * Everything the package exports besides `connect` (the same for Node and browsers): the public
 * client (public.ts) and the recipes built on it.
 */

export * from './public.js';
export { Lock, RELEASED_MARKER, LOCK_DELAY_MAX_MS, type LockOptions } from './recipes/lock.js';
export { ReadWriteLock, ReadLock, WriteLock, type ReadWriteLockOptions } from './recipes/rw-lock.js';
export { Semaphore, SEMAPHORE_PERMITS_MAX, type SemaphoreOptions } from './recipes/semaphore.js';
export { LockLostError, QueueLock, QUEUE_ENTRIES_MAX, type AcquireOptions, type QueueLockOptions } from './recipes/queue.js';
export { Election, leaderOf, isCandidateName, type ElectionEvents, type ElectionOptions, type Leader, type Term } from './recipes/election.js';
export { Barrier, DoubleBarrier, type DoubleBarrierOptions } from './recipes/barrier.js';
export { Registration, ServiceRegistry, type Member, type ServiceRegistryOptions } from './recipes/service-registry.js';
export { assignPartitions, PartitionAssignment, PARTITIONS_MAX, type PartitionAssignmentEvents, type PartitionAssignmentOptions, type PartitionMap, type PartitionsChange } from './recipes/partition-assignment.js';
export { Cache, type CacheChange, type CacheEvents, type CacheOptions, type CacheResync } from './recipes/cache.js';
export type { WaitOptions } from './recipes/waits.js';
