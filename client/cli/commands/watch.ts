/**
 * `warden watch PATH`: one line per event until Ctrl-C (exit 0). simple and table:
 * `TYPE PATH REVISION VALUE` (the value on one line, newlines escaped; empty for a delete);
 * json: one JSON object per line ({type, path, revision, value, stat}).
 *
 * Pattern: State Watch — the client's Watch resumes across members by itself, no gap, no repeat.
 *
 * Must never: exit non-zero on Ctrl-C; buffer events (each is written as it arrives).
 */

import type { CommandModule } from 'yargs';
import { oneLine } from '../output.js';
import { action, integer, path } from './context.js';

type Args = Record<string, unknown>;

export const watchCommand: CommandModule<object, Args> = {
  command: 'watch <path>',
  describe: 'print changes to a node, its children or its subtree as they happen (Ctrl-C ends)',
  builder: (y) =>
    y
      .positional('path', { type: 'string' })
      .option('scope', { choices: ['node', 'children', 'subtree'] as const, default: 'node', describe: 'the node alone, its direct children, or everything below' })
      .option('from-rev', { type: 'string', describe: 'replay history from this revision first' })
      .option('prev', { type: 'boolean', default: false, describe: 'include the previous value (json output)' })
      .example('$0 watch /config --scope subtree', 'every change under /config')
      .example('$0 watch /jobs --scope children --from-rev 100 -o json', 'replay from revision 100, as JSON Lines'),
  handler: action(async (ctx, args) => {
    const p = path(args['path']);
    const fromRevision = args['from-rev'] === undefined ? undefined : integer(args['from-rev'], '--from-rev', 1);
    const watch = ctx.client.watch(p, {
      scope: args['scope'] as 'node' | 'children' | 'subtree',
      prevNode: args['prev'] === true,
      signal: ctx.signal,
      ...(fromRevision === undefined ? {} : { fromRevision }),
    });
    void watch.started.then((revision) => ctx.out.note(`watching ${p} (${String(args['scope'])}) after revision ${revision}; Ctrl-C to stop`)).catch(() => undefined);
    try {
      for await (const event of watch) {
        const value = event.node?.value ?? '';
        if (ctx.out.format === 'json') {
          ctx.out.line(JSON.stringify({ type: event.type, path: event.path, revision: event.revision, value: event.node === null ? null : value, stat: event.node?.stat ?? null, ...(event.prevNode === undefined ? {} : { prevNode: event.prevNode }) }));
        } else {
          ctx.out.line(`${event.type.toUpperCase()} ${event.path} ${event.revision} ${oneLine(value)}`.trimEnd());
        }
      }
    } catch (error) {
      if (!ctx.signal.aborted) throw error;
    }
    if (!ctx.signal.aborted) throw new Error('the watch ended');
  }, { long: true }),
};
