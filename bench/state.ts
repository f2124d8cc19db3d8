/**
 * `npm run bench:state`: how fast the state machine applies log entries in memory (decode +
 * apply, as a member does; once more with the state store's write batch built every 100
 * entries), how fast it serves reads, and how much memory 100,000 nodes of
 * 100-byte values take. A benchmark, not a test: it prints figures.
 *
 * Must never: be used as a timed assertion; compare figures across runs (this machine is shared).
 */

import { decodeEntry, encodeEntry } from '../server/state/codec.js';
import { StateMachine } from '../server/state/state-machine.js';
import type { StateCommand } from '../server/state/state-machine.js';
import { Namespace } from '../server/state/namespace.js';
import { encodeChanges } from '../server/state/store-format.js';

const value100 = new Uint8Array(100).fill(7);

/**
 * Applies `count` commands the way a member does: entries arrive encoded (encoding is the
 * proposer's cost, done before timing), each is decoded and applied in order.
 */
function measure(name: string, count: number, setup: StateCommand[], command: (i: number) => StateCommand, storeBatchEvery = 0): { name: string; opsPerSecond: number } {
  const sm = new StateMachine({ historyRevisions: 10_000, trackChanges: storeBatchEvery > 0 });
  let index = 0;
  for (const c of setup) sm.apply({ index: ++index, timeMs: 0, command: c });
  const entries = Array.from({ length: count }, (_, i) => encodeEntry({ timeMs: i, command: command(i) }));
  const started = performance.now();
  for (const data of entries) {
    const { result } = sm.apply({ index: ++index, ...decodeEntry(data) });
    if (!result.ok) throw new Error(`${name}: ${result.code} ${result.message}`);
    // A member writes its store once per applied group; here the batch is built and dropped.
    if (storeBatchEvery > 0 && index % storeBatchEvery === 0) encodeChanges(sm, sm.takeChanges());
  }
  const seconds = (performance.now() - started) / 1000;
  return { name, opsPerSecond: Math.round(count / seconds) };
}

function measureGets(count: number): { name: string; opsPerSecond: number } {
  const ns = new Namespace();
  for (let i = 0; i < 1000; i++) ns.apply({ op: 'put', path: `/bench/k${i}`, value: value100 });
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const result = ns.get(`/bench/k${i % 1000}`);
    if (!result.ok) throw new Error('get failed');
  }
  return { name: 'get (1,000 keys)', opsPerSecond: Math.round(count / ((performance.now() - started) / 1000)) };
}

function memoryPer100kNodes(): number {
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  const ns = new Namespace();
  for (let i = 0; i < 100_000; i++) ns.apply({ op: 'put', path: `/m/d${i % 100}/n${i}`, value: new Uint8Array(100) });
  globalThis.gc?.();
  const after = process.memoryUsage().heapUsed;
  if (ns.revision < 100_000) throw new Error('not all nodes were written');
  return after - before;
}

const N = 200_000;
const rows = [
  measure('put (1,000 keys, overwrite)', N, Array.from({ length: 1000 }, (_, i) => ({ op: 'put', path: `/bench/k${i}`, value: value100 })), (i) => ({ op: 'put', path: `/bench/k${i % 1000}`, value: value100 })),
  measure('put + store batch/100', N, Array.from({ length: 1000 }, (_, i) => ({ op: 'put', path: `/bench/k${i}`, value: value100 })), (i) => ({ op: 'put', path: `/bench/k${i % 1000}`, value: value100 }), 100),
  measure('create-sequential', N / 2, [{ op: 'create', path: '/q', value: new Uint8Array(0) }], () => ({ op: 'create', path: '/q/job-', value: value100, sequential: true })),
  measure('txn of 4 ops (1 compare)', N / 4, [{ op: 'put', path: '/t/a', value: value100 }], (i) => ({
    op: 'txn',
    compare: [{ path: '/t/a', target: 'exists', operator: '=', operand: true }],
    success: [
      { op: 'put', path: `/t/k${i % 100}`, value: value100 },
      { op: 'put', path: `/t/j${i % 100}`, value: value100 },
      { op: 'get', path: '/t/a' },
      { op: 'put', path: '/t/a', value: value100 },
    ],
    failure: [],
  })),
  measureGets(N * 5),
];
const heapBytes = memoryPer100kNodes();

process.stdout.write('operation                     ops/s\n');
for (const r of rows) process.stdout.write(`${r.name.padEnd(29)} ${r.opsPerSecond.toLocaleString('en-US')}\n`);
process.stdout.write(`memory, 100,000 nodes of 100 B: ${(heapBytes / 1024 / 1024).toFixed(1)} MiB heap (${Math.round(heapBytes / 100_000)} B/node)${globalThis.gc ? '' : ' (run with --expose-gc for a steadier figure)'}\n`);
process.stdout.write(JSON.stringify({ benchmark: 'state', rows, heapBytesPer100kNodes: heapBytes }) + '\n');
