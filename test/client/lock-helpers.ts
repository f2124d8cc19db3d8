/**
 * Helpers of the lock tests (lock.test.ts): waits on events with a bound, a watcher of a lock's
 * queue, and a client whose `watch`/`children` calls are recorded — the seam through which a
 * test sees whom a waiter watches (no herd) and whether it is waiting or granted.
 *
 * Must never: wait without a bound, or poll with sleeps (every wait is woken by an event).
 */

import type { WardenClient } from '../../client/index.js';

/** Resolve when `condition` holds, checked now and on each `changed()`; reject after `timeoutMs`. */
export class Waiters {
  private readonly pending = new Set<() => void>();
  changed(): void {
    for (const check of [...this.pending]) check();
  }
  until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        this.pending.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.pending.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.pending.add(check);
      check();
    });
  }
}

/** `promise`, or a rejection naming `what` after `ms`: a grant that never comes fails the test, it does not hang it. */
export function within<T>(promise: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The names under `dir` as they change, from a children watch: waits on creates and deletes. */
export async function queueWatcher(client: WardenClient, dir: string): Promise<{ names: () => string[]; until: (n: number, what: string) => Promise<void>; stop: () => Promise<void> }> {
  await client.put(dir, '');
  const names = new Set((await client.children(dir)).filter((n) => !n.startsWith('.')));
  const waiters = new Waiters();
  const watch = client.watch(dir, { scope: 'children', fromRevision: client.revision + 1 });
  void (async () => {
    for await (const event of watch) {
      const name = event.path.slice(dir.length + 1);
      if (name.startsWith('.')) continue;
      if (event.type === 'delete') names.delete(name);
      else names.add(name);
      waiters.changed();
    }
  })().catch(() => undefined);
  return {
    names: () => [...names],
    until: (n, what) => waiters.until(() => names.size === n, `${n} entries under ${dir} (${what})`, 15_000),
    stop: () => watch.cancel(),
  };
}

/** A client whose `watch` and `children` calls are recorded (the seam the recipes use); `seen` hears of each. */
export function spied(real: WardenClient, seen: Waiters): { client: WardenClient; watched: string[]; listings: () => number } {
  const watched: string[] = [];
  let listings = 0;
  const proxy = new Proxy(real, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (property === 'watch') {
        return (path: string, options: object) => {
          watched.push(path);
          seen.changed();
          return target.watch(path, options);
        };
      }
      if (property === 'children') return (path: string, options: object) => (listings++, target.children(path, options));
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client: proxy, watched, listings: () => listings };
}

/** Start `acquire` through a spied client; resolves once it is either granted or watching (blocked). */
export async function contend(client: WardenClient, acquire: (client: WardenClient) => Promise<number>, seen: Waiters, what: string): Promise<{ state: 'granted' | 'waiting'; watched: string[]; granted: Promise<number> }> {
  const spy = spied(client, seen);
  let done = false;
  const granted = acquire(spy.client).then((token) => {
    done = true;
    seen.changed();
    return token;
  });
  granted.catch(() => undefined);
  await seen.until(() => done || spy.watched.length > 0, `${what} granted or waiting`, 15_000);
  return { state: done ? 'granted' : 'waiting', watched: spy.watched, granted };
}
