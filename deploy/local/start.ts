/**
 * `npm start`: a local three-member cluster — clients on ws://127.0.0.1:7071–7073, peers on
 * 7081–7083, data under ./data/n1..n3 — each member's log lines prefixed with its name.
 * Ctrl-C stops all three cleanly (SIGTERM to each, then waits for them).
 *
 * Must never: leave a member running after it exits; hide a member's failure (its exit is reported).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const names = ['n1', 'n2', 'n3'];
const cluster = names.map((name, i) => `${name}=ws://127.0.0.1:${7081 + i}`).join(',');
const colours = ['\x1b[36m', '\x1b[35m', '\x1b[33m'];
const tty = process.stdout.isTTY === true;

const children: ChildProcess[] = names.map((name, i) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, '--name', name, '--data-dir', `data/${name}`, '--listen-client', `ws://127.0.0.1:${7071 + i}`, '--listen-peer', `ws://127.0.0.1:${7081 + i}`, '--initial-cluster', cluster, '--log-format', tty ? 'pretty' : 'json'],
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
process.stdout.write(`warden: 3 members — clients on ws://127.0.0.1:7071, :7072, :7073 (HTTP /health, /status); Ctrl-C stops them\n`);
