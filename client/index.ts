/**
 * The package's entry under Node (`import { connect } from 'warden'`): the client library with
 * sockets from `ws`. The browser entry (browser.ts) is the same library on the global WebSocket.
 *
 * Must never: hold more than the choice of socket (everything else is in the shared modules).
 */

import { WebSocket } from 'ws';
import { WardenClient, type ConnectOptions } from './client.js';
import type { SocketLike } from './transport.js';

export * from './api.js';

/** Connect to a Warden cluster. The socket opens on the first call; the client is usable at once. */
export function connect(options: ConnectOptions): WardenClient {
  return new WardenClient(options, (url) => new WebSocket(url, { perMessageDeflate: false }) as unknown as SocketLike);
}
