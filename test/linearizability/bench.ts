/**
 * Benchmark of the linearizability checker: `npm run bench:linearizability`.
 *
 * Generates the reference workload (10,000 operations over 10 keys from 8 clients with
 * overlapping operations and some unknown outcomes), checks it, then checks it again with one
 * read corrupted, and prints a short table and one final JSON line for machines to read.
 * Target: the linearizable 10,000-operation check under 10 s.
 *
 * Must never: report a figure for a run whose verdict was wrong; exit 0 when the verdict is wrong
 * or the target is missed.
 */

import { checkHistory, type CheckResult } from './checker.js';
import { generateLinearizableHistory } from './generate.js';
import type { History } from './history.js';

const SEED = 1;
const OPERATION_COUNT = 10_000;
const KEY_COUNT = 10;
const CLIENT_COUNT = 8;
const TARGET_MS = 10_000;
/** Far above the target, so a slow run is reported as slow rather than cut short. */
const CHECK_BUDGET_MS = 120_000;

interface Row {
  readonly workload: string;
  readonly operations: number;
  readonly keys: number;
  readonly checkMs: number;
  readonly verdict: CheckResult['verdict'];
  readonly expected: CheckResult['verdict'];
}

function measure(workload: string, history: History, expected: CheckResult['verdict']): Row {
  const startedAt = performance.now();
  const result = checkHistory(history, { timeoutMs: CHECK_BUDGET_MS });
  const checkMs = performance.now() - startedAt;
  return {
    workload,
    operations: history.length,
    keys: new Set(history.map((operation) => operation.input.key)).size,
    checkMs,
    verdict: result.verdict,
    expected,
  };
}

const generationStartedAt = performance.now();
const history = generateLinearizableHistory({
  seed: SEED,
  operationCount: OPERATION_COUNT,
  keyCount: KEY_COUNT,
  clientCount: CLIENT_COUNT,
});
const generateMs = performance.now() - generationStartedAt;

const victim = history.findIndex((operation, index) => index >= OPERATION_COUNT / 2 && operation.output?.kind === 'get');
const corrupted = history.map((operation, index) =>
  index === victim ? { ...operation, output: { kind: 'get' as const, value: 'never-written' } } : operation,
);

const rows = [measure('linearizable', history, 'ok'), measure('one read corrupted', corrupted, 'illegal')];
const unknownOutcomes = history.filter((operation) => operation.returnTime === null).length;

const header = ['workload', 'ops', 'keys', 'check ms', 'verdict'];
const table = rows.map((row) => [
  row.workload,
  String(row.operations),
  String(row.keys),
  row.checkMs.toFixed(1),
  row.verdict === row.expected ? row.verdict : `${row.verdict} (WRONG, expected ${row.expected})`,
]);
const widths = header.map((title, column) => Math.max(title.length, ...table.map((cells) => cells[column]!.length)));
const formatLine = (cells: readonly string[]): string =>
  cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();

console.log(
  `linearizability checker: seed ${SEED}, ${CLIENT_COUNT} clients, ${unknownOutcomes} unknown outcomes, generated in ${generateMs.toFixed(1)} ms`,
);
console.log(formatLine(header));
console.log(formatLine(widths.map((width) => '-'.repeat(width))));
for (const cells of table) console.log(formatLine(cells));

const [linearizable, illegal] = rows as [Row, Row];
const verdictsRight = rows.every((row) => row.verdict === row.expected);
const withinTarget = linearizable.checkMs < TARGET_MS;
console.log(
  JSON.stringify({
    benchmark: 'linearizability',
    seed: SEED,
    operations: linearizable.operations,
    keys: linearizable.keys,
    clients: CLIENT_COUNT,
    unknownOutcomes,
    checkMs: Number(linearizable.checkMs.toFixed(1)),
    verdict: linearizable.verdict,
    corruptedCheckMs: Number(illegal.checkMs.toFixed(1)),
    corruptedVerdict: illegal.verdict,
    targetMs: TARGET_MS,
    pass: verdictsRight && withinTarget,
  }),
);
if (!verdictsRight || !withinTarget) process.exitCode = 1;
