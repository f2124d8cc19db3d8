/**
 * How `warden` prints: one `Output` per run, in the format the user chose (`table` for people,
 * `simple` for shell scripts — bare values, one per line — `json` for programs: one JSON
 * document per result, one line each, so a stream such as `watch` is JSON Lines). Tables align
 * their columns; colour (bold headers, red errors, dim notes) only on a TTY and never with
 * NO_COLOR. Errors go to stderr with the WardenError code, its message and whether retrying
 * is safe.
 *
 * Pattern: Strategy — each command hands over a result in all three shapes; the format picks one.
 *
 * Must never: write colour codes to a pipe or with NO_COLOR set; print a result to stderr or a
 * note to stdout (scripts read stdout); print a partial JSON line.
 */

import { WardenError } from '../api.js';

export type Format = 'table' | 'json' | 'simple';
export const FORMATS: readonly Format[] = ['table', 'json', 'simple'];

/** A bad command line found after yargs parsed it (a value of the wrong shape): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface Table {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
}

/** One result, in every shape: the chosen format prints one of them. */
export interface Result {
  readonly json: unknown;
  /** Lines for `simple` (and for `table` when no table is given). */
  readonly simple: readonly string[];
  readonly table?: Table | readonly string[];
}

const colourOn = (stream: NodeJS.WriteStream): boolean => stream.isTTY === true && (process.env['NO_COLOR'] ?? '') === '' && process.env['TERM'] !== 'dumb';
const paint = (on: boolean, code: string, text: string): string => (on ? `\x1b[${code}m${text}\x1b[0m` : text);

/** A cell as text: null and undefined as `-`, objects as JSON. */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/** Bytes as people read them (1.5 MiB). */
export function bytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A value on one line: newlines and tabs escaped, so one record stays one line. */
export function oneLine(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

export class Output {
  readonly colour: boolean;
  private readonly errColour: boolean;

  constructor(readonly format: Format) {
    this.colour = colourOn(process.stdout);
    this.errColour = colourOn(process.stderr);
  }

  /** Print one result in the chosen format. */
  print(result: Result): void {
    if (this.format === 'json') {
      this.line(JSON.stringify(result.json));
      return;
    }
    if (this.format === 'simple' || result.table === undefined) {
      for (const line of result.simple) this.line(line);
      return;
    }
    if (isTable(result.table)) for (const line of this.renderTable(result.table)) this.line(line);
    else for (const line of result.table) this.line(line);
  }

  /** A table's lines: a header (bold on a TTY), columns padded to their widest cell. */
  renderTable(table: Table): string[] {
    const text = table.rows.map((row) => table.columns.map((_, i) => oneLine(cell(row[i]))));
    const widths = table.columns.map((name, i) => Math.max(name.length, ...text.map((row) => row[i]!.length)));
    const join = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
    return [paint(this.colour, '1', join(table.columns)), ...text.map(join)];
  }

  line(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  /** A note for people (progress, what is being waited for): stderr, dim on a TTY; never in json mode's stdout. */
  note(text: string): void {
    process.stderr.write(`${paint(this.errColour, '2', text)}\n`);
  }

  /** A failed operation: code, message and whether a retry is safe, on stderr. */
  error(error: unknown): void {
    if (error instanceof WardenError) {
      const advice = error.retryable
        ? 'not applied; safe to retry'
        : error.outcomeUnknown
          ? 'may have been applied; check before retrying'
          : 'not applied; retrying the same request will fail again';
      process.stderr.write(`${paint(this.errColour, '31', `Error: ${error.code}`)}: ${error.message} (${advice})\n`);
      if (error.details.leader !== undefined) process.stderr.write(`  leader: ${error.details.leader.name} ${error.details.leader.url ?? ''}\n`);
      if (error.details.compactRevision !== undefined) process.stderr.write(`  history starts after revision ${error.details.compactRevision}\n`);
      if (error.details.limit !== undefined) process.stderr.write(`  limit: ${error.details.limit.name} = ${error.details.limit.value} (${error.details.limit.flag})\n`);
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${paint(this.errColour, '31', 'Error')}: ${message}\n`);
  }
}

function isTable(table: Table | readonly string[]): table is Table {
  return !Array.isArray(table);
}
