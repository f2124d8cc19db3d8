/**
 * The in-memory twin (server/state/memory-kv.ts) held to the KvEngine contract
 * (kv-engine-contract.ts), the same suite RocksDB runs: the simulator's stand-in for the store
 * earns its trust here. Its crash switch, which RocksDB has no counterpart of, is tested in
 * state-store.test.ts.
 *
 * Must never: add twin-only expectations to the contract (they belong in state-store.test.ts).
 */

import { MemoryKvEngine } from '../../../server/state/memory-kv.js';
import { describeKvEngineContract } from './kv-engine-contract.js';

describeKvEngineContract('MemoryKvEngine', async () => {
  const engine = new MemoryKvEngine();
  return { engine, cleanup: () => engine.close() };
});
