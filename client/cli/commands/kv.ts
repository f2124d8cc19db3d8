/**
 * The namespace commands: `get`, `put`, `create`, `del`, `ls`, `tree`, `compact`. Each is a thin
 * call of the public client plus its three printings (table / simple / json).
 *
 * Decisions: `get` of a missing path fails (exit 1, NO_NODE) — unlike etcdctl's silent exit 0,
 * because in a hierarchical namespace an empty value is common and must not look like "absent".
 * `simple` prints what a script wants: a value, a created path, a count.
 *
 * Must never: read a value other than as UTF-8 text; print more than `--max-nodes` nodes of a tree.
 */

import type { CommandModule } from 'yargs';
import { WardenError, type Stat, type WardenNode } from '../../api.js';
import { oneLine } from '../output.js';
import { action, integer, path, readStdin } from './context.js';

type Args = Record<string, unknown>;

const statRows = (node: WardenNode): [string, unknown][] => [
  ['path', node.path],
  ['value', node.value],
  ['version', node.stat.version],
  ['createRevision', node.stat.createRevision],
  ['modRevision', node.stat.modRevision],
  ['numChildren', node.stat.numChildren],
  ['lease', node.stat.lease],
];

const consistencyOption = { choices: ['linearizable', 'serializable'] as const, default: 'linearizable', describe: 'linearizable: the latest; serializable: from the member\'s own state (faster, may lag)' };

const get: CommandModule<object, Args> = {
  command: 'get <path>',
  describe: 'read a node (value and stat); exit 1 with NO_NODE if it does not exist',
  builder: (y) =>
    y
      .positional('path', { type: 'string', describe: 'the node, e.g. /config/db' })
      .option('rev', { type: 'string', describe: 'read it as it was at this revision' })
      .option('consistency', consistencyOption)
      .example('$0 get /config/db', 'the value and stat of /config/db')
      .example('$0 get /config/db --rev 12 -o simple', 'the value only, as of revision 12'),
  handler: action(async (ctx, args) => {
    const p = path(args['path']);
    const node = await ctx.client.get(p, {
      consistency: args['consistency'] as 'linearizable' | 'serializable',
      ...(args['rev'] === undefined ? {} : { revision: integer(args['rev'], '--rev', 1) }),
    });
    if (node === null) throw new WardenError('NO_NODE', `${p} does not exist`);
    ctx.out.print({ json: node, simple: [node.value], table: { columns: ['FIELD', 'VALUE'], rows: statRows(node) } });
  }),
};

/** A VALUE argument: `-` reads stdin (yargs hands a lone `-` over as '', so the raw argv decides). */
async function valueOf(raw: unknown): Promise<string> {
  if (raw === '-' || (raw === '' && process.argv.slice(2).includes('-'))) return readStdin();
  return String(raw);
}

const put: CommandModule<object, Args> = {
  command: 'put <path> <value>',
  describe: 'set a node\'s value, creating it if needed (VALUE "-" reads stdin)',
  builder: (y) =>
    y
      .positional('path', { type: 'string' })
      .positional('value', { type: 'string', describe: 'the value as text, or - for stdin' })
      .option('if-version', { type: 'string', describe: 'compare-and-set: only if the node\'s version is this (-1: only if absent)' })
      .option('lease', { type: 'string', describe: 'attach the node to this lease (it dies with it)' })
      .example('$0 put /config/db postgres://db1', 'set a value')
      .example('cat cfg.json | $0 put /config/app -', 'set a value from stdin'),
  handler: action(async (ctx, args) => {
    const p = path(args['path']);
    const value = await valueOf(args['value']);
    const result = await ctx.client.put(p, value, {
      ...(args['if-version'] === undefined ? {} : { ifVersion: integer(args['if-version'], '--if-version', -1) }),
      ...(args['lease'] === undefined ? {} : { lease: integer(args['lease'], '--lease', 1) }),
    });
    ctx.out.print({ json: result, simple: ['OK'], table: [`OK ${result.path} version ${result.stat.version} at revision ${result.revision}`] });
  }),
};

const create: CommandModule<object, Args> = {
  command: 'create <path> [value]',
  describe: 'create a node (exit 1 with NODE_EXISTS if it exists); prints the path made',
  builder: (y) =>
    y
      .positional('path', { type: 'string' })
      .positional('value', { type: 'string', default: '', describe: 'the value as text, or - for stdin (default empty)' })
      .option('sequential', { type: 'boolean', default: false, describe: 'append a zero-padded counter to the name' })
      .option('lease', { type: 'string', describe: 'an ephemeral node: it dies with this lease' })
      .option('parents', { type: 'boolean', default: false, describe: 'create missing ancestors as empty nodes' })
      .example('$0 create /jobs/job- payload --sequential', 'create /jobs/job-0000000001')
      .example('$0 create /a/b/c --parents', 'create /a, /a/b and /a/b/c'),
  handler: action(async (ctx, args) => {
    const p = path(args['path']);
    const value = await valueOf(args['value']);
    const result = await ctx.client.create(p, value, {
      sequential: args['sequential'] === true,
      parents: args['parents'] === true,
      ...(args['lease'] === undefined ? {} : { lease: integer(args['lease'], '--lease', 1) }),
    });
    ctx.out.print({ json: result, simple: [result.path], table: [`created ${result.path} at revision ${result.revision}`] });
  }),
};

const del: CommandModule<object, Args> = {
  command: 'del <path>',
  aliases: ['delete', 'rm'],
  describe: 'delete a node (--recursive: and everything below); prints how many were deleted',
  builder: (y) =>
    y
      .positional('path', { type: 'string' })
      .option('recursive', { alias: 'r', type: 'boolean', default: false, describe: 'delete its descendants too' })
      .option('if-version', { type: 'string', describe: 'only if the node\'s version is this' })
      .example('$0 del /config/old', 'delete one node (NOT_EMPTY if it has children)')
      .example('$0 del /jobs --recursive', 'delete /jobs and everything below it'),
  handler: action(async (ctx, args) => {
    const result = await ctx.client.delete(path(args['path']), {
      recursive: args['recursive'] === true,
      ...(args['if-version'] === undefined ? {} : { ifVersion: integer(args['if-version'], '--if-version', 0) }),
    });
    ctx.out.print({ json: result, simple: [String(result.deleted)], table: [`deleted ${result.deleted} node${result.deleted === 1 ? '' : 's'} at revision ${result.revision}`] });
  }),
};

const ls: CommandModule<object, Args> = {
  command: 'ls [path]',
  describe: 'list a node\'s children, one name per line',
  builder: (y) =>
    y
      .positional('path', { type: 'string', default: '/' })
      .option('consistency', consistencyOption)
      .example('$0 ls /services', 'the names under /services'),
  handler: action(async (ctx, args) => {
    const p = path(args['path']);
    const names = await ctx.client.children(p, { consistency: args['consistency'] as 'linearizable' | 'serializable' });
    ctx.out.print({ json: { path: p, children: names }, simple: names, table: { columns: ['NAME'], rows: names.map((n) => [n]) } });
  }),
};

interface TreeNode {
  readonly name: string;
  readonly path: string;
  readonly value: string;
  readonly stat: Stat;
  readonly children: TreeNode[];
}

const join = (parent: string, name: string): string => (parent === '/' ? `/${name}` : `${parent}/${name}`);

const tree: CommandModule<object, Args> = {
  command: 'tree [path]',
  describe: 'the subtree below a node, indented, with versions (bounded by --max-nodes)',
  builder: (y) =>
    y
      .positional('path', { type: 'string', default: '/' })
      .option('max-nodes', { type: 'string', default: '1000', describe: 'stop after this many nodes' })
      .option('values', { type: 'boolean', default: true, describe: 'show values (--no-values to hide them)' })
      .option('rev', { type: 'string', describe: 'the subtree as it was at this revision' })
      .example('$0 tree /services', 'everything under /services')
      .example('$0 tree / --max-nodes 50 --no-values', 'the first 50 nodes, names and versions only'),
  handler: action(async (ctx, args) => {
    const p = path(args['path']);
    const max = integer(args['max-nodes'], '--max-nodes', 1);
    const revision = args['rev'] === undefined ? undefined : integer(args['rev'], '--rev', 1);
    const rootNode = await ctx.client.get(p, revision === undefined ? {} : { revision });
    if (rootNode === null) throw new WardenError('NO_NODE', `${p} does not exist`);
    const root: TreeNode = { name: p, path: p, value: rootNode.value, stat: rootNode.stat, children: [] };
    const byPath = new Map<string, TreeNode>([[p, root]]);
    let count = 0;
    let truncated = false;
    for await (const node of ctx.client.range(p, { pageSize: Math.min(max + 1, 1_000), ...(revision === undefined ? {} : { revision }) })) {
      if (count >= max) {
        truncated = true;
        break;
      }
      count++;
      const cut = node.path.lastIndexOf('/');
      const parentPath = cut === 0 ? '/' : node.path.slice(0, cut);
      const entry: TreeNode = { name: node.path.slice(cut + 1), path: node.path, value: node.value, stat: node.stat, children: [] };
      byPath.set(node.path, entry);
      // Range is in path order, so a parent comes before its children; one missing (never expected) hangs off the root.
      (byPath.get(parentPath) ?? root).children.push(entry);
    }
    const showValues = args['values'] !== false;
    const label = (n: TreeNode): string => `${n.name} (v${n.stat.version}${n.stat.lease === null ? '' : `, lease ${n.stat.lease}`})${showValues && n.value !== '' ? ` = ${oneLine(n.value.length > 60 ? `${n.value.slice(0, 57)}...` : n.value)}` : ''}`;
    const simple: string[] = [];
    const fancy: string[] = [];
    const walk = (n: TreeNode, depth: number, prefix: string): void => {
      const sorted = [...n.children].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      sorted.forEach((child, i) => {
        const last = i === sorted.length - 1;
        simple.push(`${'  '.repeat(depth + 1)}${label(child)}`);
        fancy.push(`${prefix}${last ? '└── ' : '├── '}${label(child)}`);
        walk(child, depth + 1, `${prefix}${last ? '    ' : '│   '}`);
      });
    };
    simple.push(label(root));
    fancy.push(label(root));
    walk(root, 0, '');
    if (truncated) {
      const note = `... more nodes not shown (--max-nodes ${max})`;
      simple.push(note);
      fancy.push(note);
    }
    const toJson = (n: TreeNode): unknown => ({ path: n.path, value: n.value, stat: n.stat, children: n.children.map(toJson) });
    ctx.out.print({ json: { ...(toJson(root) as object), nodes: count + 1, truncated }, simple, table: fancy });
  }),
};

const compact: CommandModule<object, Args> = {
  command: 'compact <revision>',
  describe: 'forget history at or below a revision (older reads and watches fail COMPACTED)',
  builder: (y) => y.positional('revision', { type: 'string' }).example('$0 compact 1200', 'drop history up to revision 1200'),
  handler: action(async (ctx, args) => {
    const revision = integer(args['revision'], 'REVISION', 1);
    const result = await ctx.client.compact(revision);
    ctx.out.print({ json: result, simple: [`compacted revision ${result.compactRevision}`] });
  }),
};

export const kvCommands: readonly CommandModule<object, Args>[] = [get, put, create, del, ls, tree, compact];
