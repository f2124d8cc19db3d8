/**
 * TLS for a member's ports (the client port and the peer port): the certificate, key and trusted
 * CA read from PEM files, a secure context rebuilt from them on reload (SIGHUP: no restart), and
 * a listener that answers a plaintext connection on a TLS port with a clear reason rather than a
 * bare handshake failure. Without TLS files a port is plain HTTP, as before.
 *
 * Must never: fall back to plaintext on a TLS port; drop the working certificate when a reload
 * finds bad files (the old context stays and the error is returned); accept a peer certificate
 * not signed by the trusted CA where one is required.
 */

import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA whose signature a connecting party's certificate must carry (and the one this side trusts when it dials). */
  readonly trustedCaFile?: string;
}

/** The PEM files, read now (a missing or unreadable file is a clear error naming the flag's file). */
export function readTlsFiles(files: TlsFiles): SecureContextOptions & { readonly cert: Buffer; readonly key: Buffer } {
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`TLS: cannot read the ${what} ${path}: ${(error as Error).message}`);
    }
  };
  return {
    cert: read(files.certFile, 'certificate'),
    key: read(files.keyFile, 'key'),
    ...(files.trustedCaFile === undefined ? {} : { ca: read(files.trustedCaFile, 'trusted CA') }),
  };
}

/** What a plaintext client gets on a TLS port: an HTTP answer it can read, then the close. */
const PLAINTEXT_REFUSAL = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\nthis port speaks TLS: connect with wss:// or https:// instead  \n';
/** The first byte of a TLS ClientHello record. */
const TLS_HANDSHAKE = 0x16;

/** An HTTP(S) port: the server that handles requests and upgrades, and the listener in front of it. */
export interface Port {
  readonly server: HttpServer | HttpsServer;
  readonly tls: boolean;
  listen(port: number, host: string): Promise<void>;
  address(): AddressInfo;
  close(): Promise<void>;
  /** Read the TLS files again and use them for new connections; answers the error if they are bad (the old ones stay). */
  reload(): Error | null;
  /** The most connections the port accepts (on the listener in front, for TLS). */
  setMaxConnections(max: number): void;
}

/** How long a new connection to a TLS port may wait before its first byte (then it is dropped). */
const FIRST_BYTE_TIMEOUT_MS = 10_000;

/**
 * A port serving `handler`: plain HTTP without `tls`; with it, HTTPS whose listener hands TLS
 * connections to the HTTPS server and answers anything else with a readable refusal.
 * `clientCerts`: 'require' — only clients with a certificate the trusted CA signed get through
 * (mTLS); 'request' — a client may present one (its name is checked by the caller, per request).
 */
export function createPort(tls: TlsFiles | null, handler: (request: IncomingMessage, response: ServerResponse) => void, clientCerts: 'none' | 'request' | 'require' = 'none'): Port {
  if (tls === null) {
    const server = createHttpServer(handler);
    return {
      server,
      tls: false,
      listen: (port, host) => listenOn(server, port, host),
      address: () => server.address() as AddressInfo,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
      reload: () => null,
      setMaxConnections: (max) => void (server.maxConnections = max),
    };
  }
  const server = createHttpsServer({ ...readTlsFiles(tls), requestCert: clientCerts !== 'none', rejectUnauthorized: clientCerts === 'require' }, handler);
  const sockets = new Set<Socket>();
  const listener: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A connection that never says its first byte would hold a slot (and a socket) forever.
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      if (first[0] !== TLS_HANDSHAKE) {
        socket.end(PLAINTEXT_REFUSAL);
        return;
      }
      // The TLS server reads a raw socket's handle directly and would miss the bytes read here:
      // it is given a stream over the socket instead, starting with them.
      server.emit('connection', new SocketStream(socket, first));
    });
    socket.on('error', () => socket.destroy());
  });
  return {
    server,
    tls: true,
    listen: (port, host) => listenOn(listener, port, host),
    address: () => listener.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close(() => resolve());
        server.close();
        for (const socket of sockets) socket.destroy();
      }),
    reload: () => {
      try {
        server.setSecureContext(readTlsFiles(tls));
        return null;
      } catch (error) {
        return error as Error;
      }
    },
    setMaxConnections: (max) => void (listener.maxConnections = max),
  };
}

/** A stream over a socket whose first bytes were already read (they come first). */
/**
 * The address a client connected from (and its port). A TLS socket over a SocketStream has none
 * of its own (it wraps a stream, not a socket handle): the stream it wraps is found through the
 * TLS handle's parent, which Node keeps for it. A test pins that this still finds it.
 */
export function remoteOf(socket: Socket): { readonly address: string | undefined; readonly port: number | undefined } {
  if (socket.remoteAddress !== undefined) return { address: socket.remoteAddress, port: socket.remotePort };
  const parent = (socket as unknown as { ssl?: { _parent?: Record<symbol, unknown> } }).ssl?._parent;
  if (parent !== undefined && parent !== null) {
    for (const symbol of Object.getOwnPropertySymbols(parent)) {
      const stream = (parent[symbol] as { stream?: unknown } | undefined)?.stream;
      if (stream instanceof SocketStream) return { address: stream.remoteAddress, port: stream.remotePort };
    }
  }
  return { address: undefined, port: undefined };
}

class SocketStream extends Duplex {
  constructor(
    private readonly socket: Socket,
    first: Buffer,
  ) {
    super();
    this.push(first);
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.once('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms, callback);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.socket.write(chunk, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.socket.end(done);
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.socket.destroy(error ?? undefined);
    done(error);
  }
}

function listenOn(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
