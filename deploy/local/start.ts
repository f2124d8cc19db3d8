/**
 * `npm start`: a local three-member cluster — clients on ws://127.0.0.1:7071–7073, peers on
 * 7081–7083, data under ./data/n1..n3 — each member's log lines prefixed with its name.
 * `npm start -- --base-port 8071` (or WARDEN_BASE_PORT=8071) moves every port: clients on the
 * base and the two after it, peers ten above those. Every port is checked first: a busy one is
 * named, with what to do, before any member starts. Ctrl-C stops all three cleanly (SIGTERM to
 * each, then waits for them).
 *
 * Must never: leave a member running after it exits; hide a member's failure (its exit is
 * reported); start a cluster on ports it did not check.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm start --')
  .usage('$0 [--base-port N]\n\nStart a local three-member Warden cluster.')
  // Not `.env('WARDEN')`: with .strict() wardend's and the CLI's WARDEN_* variables would be unknown options here.
  .option('base-port', { type: 'number', default: process.env['WARDEN_BASE_PORT'] === undefined ? 7071 : Number(process.env['WARDEN_BASE_PORT']), defaultDescription: 'env WARDEN_BASE_PORT, else 7071', describe: 'the first client port; clients on it and the next two, peers 10 above each' })
  .example('$0 --base-port 8071', 'clients on 8071–8073, peers on 8081–8083')
  .strict()
  .help()
  .parse();

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const names = ['n1', 'n2', 'n3'];
const base = argv['base-port'];
if (!Number.isInteger(base) || base < 1 || base + 12 > 65_535) {
  process.stderr.write(`warden: --base-port must be a port from 1 to 65523, got ${String(base)}\n`);
  process.exit(2);
}
const clientPort = (i: number): number => base + i;
const peerPort = (i: number): number => base + 10 + i;

/** Whether nothing listens on 127.0.0.1:port now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

const wanted = names.flatMap((name, i) => [
  { port: clientPort(i), what: `${name}'s client port` },
  { port: peerPort(i), what: `${name}'s peer port` },
]);
const busy = [];
for (const want of wanted) if (!(await portFree(want.port))) busy.push(want);
if (busy.length > 0) {
  for (const { port, what } of busy) process.stderr.write(`warden: port ${port} (${what}) is in use\n`);
  process.stderr.write(`warden: stop what holds ${busy.length === 1 ? 'it' : 'them'}, or move the cluster: npm start -- --base-port ${base + 1000}\n`);
  process.exit(1);
}

const cluster = names.map((name, i) => `${name}=ws://127.0.0.1:${peerPort(i)}`).join(',');
const colours = ['\x1b[36m', '\x1b[35m', '\x1b[33m'];
const tty = process.stdout.isTTY === true;

const children: ChildProcess[] = names.map((name, i) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, '--name', name, '--data-dir', `data/${name}`, '--listen-client', `ws://127.0.0.1:${clientPort(i)}`, '--listen-peer', `ws://127.0.0.1:${peerPort(i)}`, '--initial-cluster', cluster, '--log-format', tty ? 'pretty' : 'json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const prefix = tty ? `${colours[i]}${name}\x1b[0m ` : `${name} `;
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
  child.on('exit', (code, signal) => {
    process.stdout.write(`${prefix}exited (${code ?? signal})\n`);
    if (!stopping) stopAll(1);
  });
  return child;
});

let stopping = false;
function stopAll(exitCode: number): void {
  if (stopping) return;
  stopping = true;
  let running = children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  if (running === 0) process.exit(exitCode);
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.once('exit', () => {
      running -= 1;
      if (running === 0) process.exit(exitCode);
    });
    child.kill('SIGTERM');
  }
}

process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));
process.stdout.write(`warden: 3 members — clients on ws://127.0.0.1:${clientPort(0)}, :${clientPort(1)}, :${clientPort(2)} (HTTP /health, /status); Ctrl-C stops them\n`);
