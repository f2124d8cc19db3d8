#!/usr/bin/env node
/**
 * The program behind `warden snapshot restore`: builds one new member's data directory from a
 * snapshot file (server/restore.ts). The CLI is a client and never loads server code, so it runs
 * this as a child process (as etcdctl's restore lives in etcdutl) and reads its answer: JSON
 * lines on stdout — `{"progress": bytes, "total": bytes}` while reading, then one
 * `{"ok": true, ...}` or `{"ok": false, "error": message}` — and the exit code (0, or 1).
 *
 * Must never: print anything on stdout but those JSON lines (the CLI parses them); exit 0 when
 * the data directory was not built whole.
 */

import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { restoreSnapshot } from './restore.js';

const say = (line: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { file: { type: 'string' }, 'data-dir': { type: 'string' }, name: { type: 'string' }, 'initial-cluster': { type: 'string' }, progress: { type: 'boolean', default: false } },
    strict: true,
  });
  const { file, name } = values;
  const dataDir = values['data-dir'];
  const initialCluster = values['initial-cluster'];
  if (file === undefined || dataDir === undefined || name === undefined || initialCluster === undefined) {
    say({ ok: false, error: '--file, --data-dir, --name and --initial-cluster are all needed' });
    return 2;
  }
  const logger = pino({ name: 'warden restore' }, pino.destination(2));
  let lastReport = 0;
  try {
    const result = await restoreSnapshot({
      file,
      dataDir,
      name,
      initialCluster,
      logger: { warn: (fields, message) => logger.warn(fields, message) },
      onProgress: (bytes, total) => {
        // At most about a hundred lines for the whole file.
        if (values.progress && (bytes === total || bytes - lastReport >= total / 100)) {
          lastReport = bytes;
          say({ progress: bytes, total });
        }
      },
    });
    say({ ok: true, ...result });
    return 0;
  } catch (error) {
    say({ ok: false, error: (error as Error).message });
    return 1;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    say({ ok: false, error: (error as Error).message });
    process.exitCode = 1;
  },
);
