/**
 * The package's entry in a browser (the `browser` export condition): the client library on the
 * global WebSocket. Same API as the Node entry.
 *
 * Must never: import a Node builtin or `ws`.
 */

import { WardenClient, type ConnectOptions } from './client.js';
import type { OpenSocket } from './transport.js';

export * from './api.js';

/** Connect to a Warden cluster. The socket opens on the first call; the client is usable at once. */
export function connect(options: ConnectOptions): WardenClient {
  const WebSocketClass = (globalThis as { WebSocket?: new (url: string) => ReturnType<OpenSocket> }).WebSocket;
  if (WebSocketClass === undefined) throw new Error('warden: no global WebSocket here; under Node import the package\'s Node entry');
  return new WardenClient(options, (url) => new WebSocketClass(url));
}
