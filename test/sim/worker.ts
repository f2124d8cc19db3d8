/**
 * A simulator worker process: runs the seeds its parent sends, one at a time, and answers with
 * a summary of each (the trace and history stay here unless the seed failed).
 *
 * Must never: run a seed the parent did not ask for, or keep state between seeds.
 */

import { runSimulation, type SimOptions } from './simulation.js';

export type WorkerRequest = { readonly seed: number; readonly options: Omit<SimOptions, 'seed'> } | { readonly stop: true };

process.on('message', async (request: WorkerRequest) => {
  if ('stop' in request) {
    process.exit(0);
  }
  const startedMs = performance.now();
  const result = await runSimulation({ ...request.options, seed: request.seed });
  process.send!({ ...result, history: [], trace: result.violation === null ? [] : result.trace, wallMs: performance.now() - startedMs });
});
