/**
 * `warden txn`: one transaction from JSON (stdin, or --file). The shape, values as UTF-8 text:
 *
 *   { "compare": [ { "path": "/cfg", "target": "version", "operator": "=", "operand": 3 },
 *                  { "path": "/cfg", "target": "value", "operator": "!=", "operand": "off" },
 *                  { "path": "/lock", "target": "exists", "operand": false } ],
 *     "success": [ { "op": "put", "path": "/cfg", "value": "on" },
 *                  { "op": "create", "path": "/log/e-", "value": "x", "sequential": true },
 *                  { "op": "delete", "path": "/old", "recursive": true },
 *                  { "op": "get", "path": "/cfg" } ],
 *     "failure": [ { "op": "get", "path": "/cfg" } ] }
 *
 * targets: value | version | createRevision | modRevision | exists; operators = != < >.
 * Output (simple): SUCCESS or FAILURE, then one line per op: put → OK, create → the path,
 * delete → the count, get → the value. Either branch is exit 0 (as etcdctl); a refused txn is 1.
 * `--interactive` (the default when stdin is a terminal) reads the same txn as lines instead.
 *
 * Must never: send a txn the JSON did not spell out (an unknown field is a usage error, exit 2).
 */

import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { CommandModule } from 'yargs';
import { cmp, op, type Compare, type CompareOperator, type TxnOp } from '../../api.js';
import { oneLine, UsageError } from '../output.js';
import { action, readStdin } from './context.js';

type Args = Record<string, unknown>;
type Json = Record<string, unknown>;

const OPERATORS = new Set(['=', '!=', '<', '>']);

function field<T>(o: Json, key: string, kind: 'string' | 'number' | 'boolean', where: string, required = true): T | undefined {
  const v = o[key];
  if (v === undefined) {
    if (required) throw new UsageError(`${where}: "${key}" is missing`);
    return undefined;
  }
  if (typeof v !== kind) throw new UsageError(`${where}: "${key}" must be a ${kind}`);
  return v as T;
}

function known(o: Json, keys: readonly string[], where: string): void {
  for (const key of Object.keys(o)) if (!keys.includes(key)) throw new UsageError(`${where}: unknown field "${key}" (known: ${keys.join(', ')})`);
}

export function parseCompare(raw: unknown, where: string): Compare {
  if (typeof raw !== 'object' || raw === null) throw new UsageError(`${where}: expected an object`);
  const o = raw as Json;
  known(o, ['path', 'target', 'operator', 'operand'], where);
  const path = field<string>(o, 'path', 'string', where)!;
  const target = field<string>(o, 'target', 'string', where)!;
  const operator = (field<string>(o, 'operator', 'string', where, target !== 'exists') ?? '=') as CompareOperator;
  if (!OPERATORS.has(operator)) throw new UsageError(`${where}: operator must be one of = != < >`);
  switch (target) {
    case 'value':
      return cmp.value(path, operator, field<string>(o, 'operand', 'string', where)!);
    case 'version':
    case 'createRevision':
    case 'modRevision':
      return cmp[target](path, operator, field<number>(o, 'operand', 'number', where)!);
    case 'exists':
      return cmp.exists(path, field<boolean>(o, 'operand', 'boolean', where, false) ?? true);
    default:
      throw new UsageError(`${where}: target must be value, version, createRevision, modRevision or exists`);
  }
}

export function parseOp(raw: unknown, where: string): TxnOp {
  if (typeof raw !== 'object' || raw === null) throw new UsageError(`${where}: expected an object`);
  const o = raw as Json;
  const path = field<string>(o, 'path', 'string', where)!;
  switch (o['op']) {
    case 'put':
      known(o, ['op', 'path', 'value', 'ifVersion', 'lease'], where);
      return op.put(path, field<string>(o, 'value', 'string', where)!, { ...opt(o, 'ifVersion', where), ...opt(o, 'lease', where) });
    case 'create': {
      known(o, ['op', 'path', 'value', 'sequential', 'lease', 'parents'], where);
      const flags = { ...(o['sequential'] === true ? { sequential: true } : {}), ...(o['parents'] === true ? { parents: true } : {}), ...opt(o, 'lease', where) };
      return op.create(path, field<string>(o, 'value', 'string', where, false) ?? '', flags);
    }
    case 'delete':
      known(o, ['op', 'path', 'ifVersion', 'recursive'], where);
      return op.delete(path, { ...opt(o, 'ifVersion', where), ...(o['recursive'] === true ? { recursive: true } : {}) });
    case 'get':
      known(o, ['op', 'path', 'revision'], where);
      return op.get(path, opt(o, 'revision', where));
    default:
      throw new UsageError(`${where}: "op" must be put, create, delete or get`);
  }
}

function opt(o: Json, key: string, where: string): Record<string, number> {
  const v = field<number>(o, key, 'number', where, false);
  return v === undefined ? {} : { [key]: v };
}

export function parseTxn(text: string): { compare: Compare[]; success: TxnOp[]; failure: TxnOp[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the txn is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UsageError('the txn must be a JSON object {compare, success, failure}');
  const o = doc as Json;
  known(o, ['compare', 'success', 'failure'], 'txn');
  const list = (key: string): unknown[] => {
    const v = o[key] ?? [];
    if (!Array.isArray(v)) throw new UsageError(`txn: "${key}" must be an array`);
    return v;
  };
  return {
    compare: list('compare').map((c, i) => parseCompare(c, `compare[${i}]`)),
    success: list('success').map((c, i) => parseOp(c, `success[${i}]`)),
    failure: list('failure').map((c, i) => parseOp(c, `failure[${i}]`)),
  };
}

/**
 * Interactive mode, etcdctl's: three blocks of lines, each ended by an empty line — compares
 * (`TARGET PATH OP OPERAND`: `version /cfg = 3`, `value /cfg != off`, `exists /lock = false`),
 * then the success ops, then the failure ops (`put PATH VALUE...`, `create PATH [VALUE...]
 * [--sequential] [--parents]`, `del PATH [--recursive]`, `get PATH`). Prompts go to stderr.
 */
async function interactive(): Promise<string> {
  const prompt = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const block = async (title: string): Promise<string[]> => {
    if (prompt) process.stderr.write(`${title} (one per line, an empty line ends):\n`);
    const out: string[] = [];
    for (;;) {
      const next = await lines.next();
      if (next.done === true) return out;
      const line = String(next.value).trim();
      if (line === '') return out;
      out.push(line);
    }
  };
  const compares = await block('compares, e.g. version /cfg = 3');
  const success = await block('success ops, e.g. put /cfg on');
  const failure = await block('failure ops, e.g. get /cfg');
  rl.close();
  const compare = compares.map((line, i): Json => {
    const [target, path, operator, ...rest] = line.split(/\s+/);
    if (target === undefined || path === undefined || operator === undefined || rest.length === 0) throw new UsageError(`compare ${i + 1}: expected TARGET PATH OP OPERAND, got ${JSON.stringify(line)}`);
    const text = rest.join(' ');
    const operand = target === 'value' ? text : target === 'exists' ? text === 'true' : Number(text);
    return { path, target, operator, operand };
  });
  const op = (line: string, i: number): Json => {
    const words = line.split(/\s+/);
    const flags = new Set(words.filter((w) => w.startsWith('--')));
    const plain = words.filter((w) => !w.startsWith('--'));
    const [verb, path, ...value] = plain;
    if (verb === undefined || path === undefined) throw new UsageError(`op ${i + 1}: expected VERB PATH ..., got ${JSON.stringify(line)}`);
    switch (verb) {
      case 'put':
        return { op: 'put', path, value: value.join(' ') };
      case 'create':
        return { op: 'create', path, value: value.join(' '), ...(flags.has('--sequential') ? { sequential: true } : {}), ...(flags.has('--parents') ? { parents: true } : {}) };
      case 'del':
      case 'delete':
        return { op: 'delete', path, ...(flags.has('--recursive') ? { recursive: true } : {}) };
      case 'get':
        return { op: 'get', path };
      default:
        throw new UsageError(`op ${i + 1}: the verb must be put, create, del or get, got ${JSON.stringify(verb)}`);
    }
  };
  return JSON.stringify({ compare, success: success.map(op), failure: failure.map(op) });
}

export const txnCommand: CommandModule<object, Args> = {
  command: 'txn',
  describe: 'run a transaction from JSON on stdin or --file: {compare:[...], success:[...], failure:[...]}',
  builder: (y) =>
    y
      .option('file', { alias: 'f', type: 'string', describe: 'read the JSON from this file (default stdin)' })
      .option('interactive', { alias: 'i', type: 'boolean', describe: 'prompt for compares, success and failure ops, a line each (default when stdin is a terminal)' })
      .example(`echo '{"compare":[{"path":"/cfg","target":"version","operator":"=","operand":0}],"success":[{"op":"put","path":"/cfg","value":"v2"}]}' | $0 txn`, 'compare-and-set /cfg')
      .example('$0 txn --file txn.json -o json', 'from a file, the result as JSON')
      .example('$0 txn -i', 'prompt for compares, then success ops, then failure ops'),
  handler: action(async (ctx, args) => {
    const file = args['file'] as string | undefined;
    const asked = args['interactive'] as boolean | undefined;
    const text =
      asked === true || (asked === undefined && file === undefined && process.stdin.isTTY === true)
        ? await interactive()
        : file === undefined
          ? await readStdin()
          : await readFile(file, 'utf8').catch((error: Error) => Promise.reject(new UsageError(`--file: ${error.message}`)));
    const txn = parseTxn(text);
    const result = await ctx.client.txn().if(...txn.compare).do(...txn.success).else(...txn.failure).commit();
    const lines = result.results.map((r) => {
      switch (r.op) {
        case 'put':
          return 'OK';
        case 'create':
          return r.path;
        case 'delete':
          return String(r.deleted);
        default:
          return oneLine(r.node.value);
      }
    });
    const json = { succeeded: result.succeeded, revision: result.revision, results: result.results.map((r) => (r.op === 'get' ? { op: 'get', node: r.node } : r)) };
    ctx.out.print({ json, simple: [result.succeeded ? 'SUCCESS' : 'FAILURE', ...lines], table: [`${result.succeeded ? 'SUCCESS' : 'FAILURE'} at revision ${result.revision}`, ...lines] });
  }),
};
