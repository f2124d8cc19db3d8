/**
 * The package's entry under Node (`import { connect } from 'warden'`): the client library with
 * sockets from `ws`. The browser entry (browser.ts) is the same library on the global WebSocket.
 * This file is the client's one Node seam: only here may Node APIs appear.
 *
 * Pattern: Request Batch on the wire — a request is one frame, but the frames a client sends in
 * one tick leave in one TCP write: the first send of a tick corks the raw socket and the next
 * tick uncorks it (one syscall per frame was the client's largest CPU cost at 64 in flight).
 *
 * Must never: hold a frame past the current tick; hold more than the choice of socket
 * (everything else is in the shared modules).
 */

import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { WardenClient, type ConnectOptions } from './client.js';
import type { SocketLike } from './transport.js';

export * from './api.js';

/** A `ws` socket seen through the WHATWG surface the client uses, with writes coalesced per tick. */
class NodeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  onmessage: SocketLike['onmessage'] = null;
  private readonly ws: WebSocket;
  private corked = false;

  constructor(url: string, tls: ConnectOptions['tls']) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...(tls === undefined ? {} : { ca: pem(tls.ca), cert: pem(tls.cert), key: pem(tls.key) }) });
    this.ws.onopen = (event) => this.onopen?.(event);
    this.ws.onclose = (event) => this.onclose?.(event);
    this.ws.onerror = (event) => this.onerror?.(event);
    this.ws.onmessage = (event) => this.onmessage?.(event);
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  send(data: string): void {
    const raw = (this.ws as { _socket?: Duplex })._socket;
    if (!this.corked && raw !== undefined) {
      this.corked = true;
      raw.cork();
      process.nextTick(() => {
        this.corked = false;
        raw.uncork();
      });
    }
    this.ws.send(data);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}

/** Connect to a Warden cluster. The socket opens on the first call; the client is usable at once. */
export function connect(options: ConnectOptions): WardenClient {
  return new WardenClient(options, (url) => new NodeSocket(url, options.tls));
}

function pem(value: string | Uint8Array | undefined): string | Buffer | undefined {
  return value === undefined || typeof value === 'string' ? value : Buffer.from(value);
}
