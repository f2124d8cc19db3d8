/**
 * The client port: WebSocket frames of the client protocol (shared/protocol.ts) and, on the same
 * port, HTTP /health and /status. Every frame is validated by ajv against its schema before
 * anything runs; bad input gets an error frame with a code from shared/ and the connection
 * stays open. Requests on one socket run concurrently and answer in any order (Request
 * Pipeline), up to a bound per socket; a client that stops reading is disconnected with a
 * reason once its unread answers pass a bound, and nobody else waits for it.
 *
 * Must never: let one client's input crash the member or slow another client; answer without
 * the request's id; run a request its schema refused.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Ajv, type ValidateFunction } from 'ajv';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ENVELOPE_SCHEMA, FRAME_BYTES_MAX_DEFAULT, REQUEST_SCHEMAS, type RequestType } from '../../shared/protocol.js';
import type { ErrorCode } from '../../shared/errors.js';
import type { RuntimeLogger } from '../node/runtime.js';
import type { ClientConnection, RequestHandlers } from './handlers.js';
import { writeCoalescer } from '../transport/coalesce.js';

/** Requests one socket may have in flight; more are refused until some finish. */
const IN_FLIGHT_MAX = 4_096;
/** Unread answer bytes after which a client that does not read is cut off. */
const UNREAD_BYTES_MAX = 16 * 1024 * 1024;
/** Unsent bytes past which watch pushes are refused (the watcher is cancelled, the connection kept). */
const WATCH_UNSENT_BYTES_MAX = 8 * 1024 * 1024;

export interface ClientServerOptions {
  readonly host: string;
  readonly port: number;
  readonly frameBytesMax?: number;
  readonly logger: RuntimeLogger;
  readonly handlers: RequestHandlers;
  /** /health: 200 when the member has a leader and is applied to within a bound. */
  readonly healthy: () => boolean;
  readonly status: () => Record<string, unknown>;
}

export interface ClientServer {
  readonly port: number;
  readonly http: Server;
  close(): Promise<void>;
}

export async function startClientServer(options: ClientServerOptions): Promise<ClientServer> {
  const ajv = new Ajv({ allErrors: false, strict: false });
  const envelope = ajv.compile(ENVELOPE_SCHEMA);
  const validators = new Map<string, ValidateFunction>(Object.entries(REQUEST_SCHEMAS).map(([type, schema]) => [type, ajv.compile(schema)]));
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT, perMessageDeflate: false });
  const http = createServer((request, response) => serveHttp(request, response, options));
  http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => serveSocket(socket, request.socket, options, envelope, validators));
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => resolve());
  });
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return {
    port,
    http,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.close(1001, 'member stopping');
        wss.close();
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

function serveHttp(request: IncomingMessage, response: ServerResponse, options: ClientServerOptions): void {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method === 'GET' && path === '/health') {
    const healthy = options.healthy();
    respondJson(response, healthy ? 200 : 503, { health: healthy ? 'ok' : 'unavailable' });
    return;
  }
  if (request.method === 'GET' && path === '/status') {
    respondJson(response, 200, options.status());
    return;
  }
  respondJson(response, 404, { error: 'not found: try GET /health, GET /status, or a WebSocket for the client protocol' });
}

function respondJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function serveSocket(socket: WebSocket, raw: Duplex, options: ClientServerOptions, envelope: ValidateFunction, validators: Map<string, ValidateFunction>): void {
  let inFlight = 0;
  const coalesce = writeCoalescer(raw);
  const reply = (frame: Record<string, unknown>): void => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > UNREAD_BYTES_MAX) {
      socket.close(1008, 'the client does not read its answers');
      return;
    }
    coalesce();
    socket.send(JSON.stringify(frame));
  };
  const refuse = (id: unknown, code: ErrorCode, message: string): void => reply({ id: id ?? null, ok: false, error: { code, message } });
  const connection: ClientConnection = {
    sink: {
      push: (frame, force = false) => {
        if (socket.readyState !== WebSocket.OPEN) return false;
        if (!force && socket.bufferedAmount > WATCH_UNSENT_BYTES_MAX) return false;
        coalesce();
        socket.send(frame);
        return true;
      },
    },
  };
  socket.on('close', () => options.handlers.disconnected(connection));

  socket.on('error', (error) => options.logger.warn({ event: 'client_socket_error', error: error.message }, 'a client socket failed'));
  socket.on('message', (data: RawData, isBinary: boolean) => {
    if (isBinary) return refuse(null, 'INVALID_ARGUMENT', 'frames are JSON text');
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return refuse(null, 'INVALID_ARGUMENT', 'the frame is not valid JSON');
    }
    if (!envelope(frame)) return refuse((frame as { id?: unknown } | null)?.id, 'INVALID_ARGUMENT', 'a request needs an "id" (string or integer) and a "type"');
    const { id, type } = frame as { id: string | number; type: string };
    const validate = validators.get(type);
    if (validate === undefined) return refuse(id, 'INVALID_ARGUMENT', `unknown request type ${JSON.stringify(type)}`);
    if (!validate(frame)) {
      const problem = validate.errors?.[0];
      return refuse(id, 'INVALID_ARGUMENT', `${type}: ${problem?.instancePath || '(request)'} ${problem?.message ?? 'is invalid'}`);
    }
    if (inFlight >= IN_FLIGHT_MAX) return refuse(id, 'UNAVAILABLE', `more than ${IN_FLIGHT_MAX} requests in flight on this connection; wait for answers`);
    inFlight += 1;
    options.handlers
      .handle(type as RequestType, frame as Record<string, unknown>, connection)
      .then(
        (answer) => reply({ id, ...answer }),
        (error: Error) => {
          options.logger.error({ event: 'request_failed', type, error: error.message }, 'a request failed unexpectedly');
          refuse(id, 'UNAVAILABLE', 'the member could not serve the request');
        },
      )
      .finally(() => {
        inFlight -= 1;
      });
  });
}
