/**
 * The client port: WebSocket frames of the client protocol (shared/protocol.ts) and, on the same
 * port, the HTTP endpoints (http-endpoints.ts: /health, /status, /metrics...). Every frame is
 * validated by ajv against its schema before anything runs; bad input gets an error frame with a
 * code from shared/ and the connection stays open. Requests on one socket run concurrently and
 * answer in any order (Request Pipeline), within the member's limits (server/limits.ts):
 * connections, requests and request bytes in flight, and unread answers per connection and per
 * member — past each a client gets an error or a close whose reason names the limit, and nobody
 * else waits for it.
 *
 * Must never: let one client's input crash the member or slow another client (every socket
 * handler is guarded); answer without the request's id, or with an id the schema refused (it
 * is answered as null, never echoed); run a request its schema refused.
 */

import type { IncomingMessage, Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createPort, remoteOf, type TlsFiles } from '../tls.js';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Ajv, type ValidateFunction } from 'ajv';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ENVELOPE_SCHEMA, REQUEST_SCHEMAS, isRequestId, type RequestType } from '../../shared/protocol.js';
import type { ErrorCode } from '../../shared/errors.js';
import type { RuntimeLogger } from '../node/runtime.js';
import type { ClientConnection, RequestHandlers } from './handlers.js';
import { writeCoalescer } from '../transport/coalesce.js';
import { tracePath, tracing } from '../metrics/path-trace.js';
import { limitField, nameLimit, type Limits } from '../limits.js';
import { respondJson, serveHttp } from './http-endpoints.js';
import { encodeAnswer, errorFrame } from './wire.js';
import type { TurnBudget } from './turn-budget.js';

/** A request whose synchronous handling takes longer than this is logged with its type. */
const SLOW_REQUEST_MS = 50;
/**
 * Backpressure: a connection with this many requests in flight and answers waiting for a turn's
 * answer room (together) is no longer read (TCP holds the rest at the client) until its answers
 * bring it down to READ_RESUME_IN_FLIGHT. A pipelining client is paced by its answers instead of
 * refused, a burst from one socket cannot fill every turn of the event loop, and neither can a
 * connection's answers waiting for room (its refusals included) grow without bound.
 */
const READ_PAUSE_IN_FLIGHT = 1_024;
const READ_RESUME_IN_FLIGHT = 512;
/** TCP connections beyond --max-connections (upgrades under way, health checks) the port accepts. */
const HTTP_CONNECTIONS_MARGIN = 64;
/** How long a cut connection has to take its close before it is dropped (and what it left unread freed). */
const CUT_GRACE_MS = 1_000;
/** A cut connection with more unread than this is dropped at once, not sent a close behind it. */
const CUT_CLOSE_UNREAD_MAX = 1024 * 1024;
/** What a request in flight counts against the member's in-flight bytes, at least. */
const REQUEST_COST_MIN_BYTES = 1024;

export interface ClientServerOptions {
  readonly host: string;
  readonly port: number;
  readonly limits: Limits;
  /** Answer bytes built per turn of the event loop, shared with the handlers (which wait on it before serving a read). */
  readonly answerBudget: TurnBudget;
  readonly logger: RuntimeLogger;
  readonly handlers: RequestHandlers;
  /** /health: 200 when the member has a leader and is applied to within a bound. */
  readonly healthy: () => boolean;
  readonly status: () => Record<string, unknown>;
  /** /livez: 200 while the member's update loop runs (its storage has not failed). */
  readonly live: () => boolean;
  /** /readyz: the checks a member must pass to take clients (a leader known, applied close to commit, no alarm), each failed one named. */
  readonly readiness: (exclude: ReadonlySet<string>) => { readonly ready: boolean; readonly failed: readonly string[] };
  /** /metrics (Prometheus text), and each request answered on the socket. */
  readonly metrics: { observeRequest(type: string, result: string, seconds: number): void; text(): Promise<string>; readonly contentType: string };
  /** TLS for the port (wss://, https:// for /health and /status); null or absent: plaintext. */
  readonly tls?: TlsFiles | null;
}

export interface ClientServer {
  readonly port: number;
  readonly http: Server | HttpsServer;
  /** Read the TLS files again (SIGHUP): the error if they are bad (the old certificate stays). */
  reloadTls(): Error | null;
  /** Open client connections now. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * ws closes a connection whose frame passes maxPayload with 1009 and no reason; this one says
 * which limit it passed, so the client can tell the operator what to change.
 */
function socketClass(frameBytesMax: number): typeof WebSocket {
  return class LimitNamingWebSocket extends WebSocket {
    override close(code?: number, reason?: string | Buffer): void {
      if (code === 1009 && reason === undefined) super.close(code, `frame larger than --max-frame-bytes ${frameBytesMax}`);
      else super.close(code, reason);
    }
  };
}

interface Connection {
  readonly socket: WebSocket;
  readonly raw: Duplex;
  readonly client: ClientConnection;
  inFlight: number;
  /** Answers built and waiting for a turn's answer room. */
  waitingAnswers: number;
  /** The unread bytes seen at its last send (the member's running total is the sum). */
  lastUnread: number;
}

export async function startClientServer(options: ClientServerOptions): Promise<ClientServer> {
  const { limits, logger } = options;
  const ajv = new Ajv({ allErrors: false, strict: false });
  const envelope = ajv.compile(ENVELOPE_SCHEMA);
  const validators = new Map<string, ValidateFunction>(Object.entries(REQUEST_SCHEMAS).map(([type, schema]) => [type, ajv.compile(schema)]));
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.frameBytesMax, perMessageDeflate: false, WebSocket: socketClass(limits.frameBytesMax) });
  const connections = new Set<Connection>();
  // Unread bytes of every connection together, as last seen: an overestimate between sends
  // (sockets drain silently), so passing the bound triggers an exact count before anyone is cut.
  let unreadTotal = 0;
  let inFlightBytes = 0;

  // With a trusted CA, a WebSocket needs a client certificate it signed (its CN may name a user);
  // /health and /status stay open to probes without one.
  const clientCerts = options.tls?.trustedCaFile !== undefined;
  const listener = createPort(
    options.tls ?? null,
    (request, response) => {
      try {
        serveHttp(request, response, options);
      } catch (error) {
        logger.error({ event: 'http_failed', error: (error as Error).message }, 'an HTTP request failed');
        if (!response.headersSent) respondJson(response, 500, { error: 'internal error' });
      }
    },
    clientCerts ? 'request' : 'none',
  );
  const http = listener.server;
  http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      if (clientCerts && !(request.socket as TLSSocket).authorized) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nthis member requires a client certificate signed by its trusted CA (--trusted-ca-file)\n');
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
    } catch (error) {
      logger.warn({ event: 'upgrade_failed', error: (error as Error).message }, 'a WebSocket upgrade failed');
      socket.destroy();
    }
  });
  http.on('clientError', (_error, socket: Duplex) => socket.destroy());
  // TCP connections of any kind (upgrades not yet done, /health probes) are bounded too: past
  // the WebSocket bound and a margin for probes, the kernel's accept is answered with a close.
  listener.setMaxConnections(limits.connectionsMax + HTTP_CONNECTIONS_MARGIN);

  /**
   * Cut a connection that does not read. With little left unread it is closed with a reason
   * (1008) and dropped after a grace if the client does not take the close; with more, the
   * reason would sit behind all of it, reaching only a client that reads it all, while the member
   * holds it: it is dropped at once (1006) — its reason is in the member's log (client_cut).
   */
  const cut = (c: Connection, reason: string): void => {
    connections.delete(c);
    const unread = c.socket.bufferedAmount;
    unreadTotal -= c.lastUnread;
    c.lastUnread = 0;
    if (unread > CUT_CLOSE_UNREAD_MAX) {
      c.socket.terminate();
      return;
    }
    c.socket.close(1008, reason);
    setTimeout(() => c.socket.terminate(), CUT_GRACE_MS).unref();
  };

  /** Count every connection's unread bytes exactly; cut the biggest readers-not until under the member's bound. */
  const enforceMemberUnread = (): void => {
    unreadTotal = 0;
    for (const c of connections) {
      c.lastUnread = c.socket.bufferedAmount;
      unreadTotal += c.lastUnread;
    }
    if (unreadTotal <= limits.unreadBytesPerMemberMax) return;
    const biggest = [...connections].sort((a, b) => b.lastUnread - a.lastUnread);
    for (const c of biggest) {
      if (unreadTotal <= limits.unreadBytesPerMemberMax) break;
      logger.warn({ event: 'client_cut', reason: 'member_unread', unreadBytes: c.lastUnread }, 'closed the connection holding the most unread answers');
      cut(c, `member's unread answers passed ${nameLimit(limits, 'unreadBytesPerMemberMax')}; read your answers`);
    }
  };

  /** Before a send on `c`: false if it was cut (its own or the member's unread bound). */
  const roomFor = (c: Connection, bound: number, closeIfOver: boolean): boolean => {
    if (c.socket.readyState !== WebSocket.OPEN) return false;
    const unread = c.socket.bufferedAmount;
    unreadTotal += unread - c.lastUnread;
    c.lastUnread = unread;
    if (unread > bound) {
      if (closeIfOver) {
        logger.warn({ event: 'client_cut', reason: 'unread', unreadBytes: unread }, 'closed a connection that does not read its answers');
        cut(c, `unread answers passed ${nameLimit(limits, 'unreadBytesPerConnectionMax')}; read your answers`);
      }
      return false;
    }
    if (unreadTotal > limits.unreadBytesPerMemberMax) {
      enforceMemberUnread();
      if (c.socket.readyState !== WebSocket.OPEN) return false;
    }
    return true;
  };

  const serveSocket = (socket: WebSocket, raw: Duplex, request: IncomingMessage): void => {
    const remote = remoteOf(request.socket);
    const coalesce = writeCoalescer(raw, true);
    const send = (text: string | Buffer): void => {
      coalesce();
      if (tracing) tracePath('client.answer');
      socket.send(text, { binary: false });
    };
    if (connections.size >= limits.connectionsMax) {
      send(JSON.stringify({ id: null, ...errorFrame('RESOURCE_EXHAUSTED', `this member holds ${limits.connectionsMax} connections already; try another member or later`, { limit: limitField(limits, 'connectionsMax') }) }));
      socket.close(1013, `too many connections (${nameLimit(limits, 'connectionsMax')})`);
      // Not counted, so not held either: a client that does not complete the close is dropped.
      setTimeout(() => socket.terminate(), CUT_GRACE_MS).unref();
      return;
    }
    const connection: Connection = {
      socket,
      raw,
      inFlight: 0,
      waitingAnswers: 0,
      lastUnread: 0,
      client: {
        alive: () => socket.readyState === WebSocket.OPEN,
        auth: { source: `${remote.address ?? '?'}:${remote.port ?? 0}`, address: remote.address ?? '?', certName: clientCerts ? certificateName(request) : null, identity: null },
        sink: {
          push: (frame, force = false) => {
            if (!roomFor(connection, force ? limits.unreadBytesPerConnectionMax : limits.watchUnsentBytesMax, force)) return false;
            send(frame);
            return true;
          },
          writable: () => socket.readyState === WebSocket.OPEN && socket.bufferedAmount < limits.watchUnsentBytesMax / 4,
          whenWritable: (run) => {
            const check = (): void => {
              if (socket.readyState !== WebSocket.OPEN) return;
              if (socket.bufferedAmount < limits.watchUnsentBytesMax / 4) run();
              else raw.once('drain', check);
            };
            raw.once('drain', check);
          },
        },
      },
    };
    connections.add(connection);
    /**
     * Send an answer. Past this turn's answer budget it waits for a later turn, in this
     * connection's turn among those waiting (answers go in any order) — unless it was charged
     * already, as a read is when it is served.
     */
    const reply = (frame: Record<string, unknown>, charged = false): void => {
      const answer = (): void => {
        try {
          if (!roomFor(connection, limits.unreadBytesPerConnectionMax, true)) return;
          const text = encodeAnswer(frame);
          if (!charged) options.answerBudget.charge(text.length);
          send(text);
        } catch (error) {
          // An answer that cannot be sent must not leave its client waiting on the id forever:
          // the connection ends, and the client knows each request on it may or may not have run.
          logger.error({ event: 'answer_failed', error: (error as Error).message }, 'an answer could not be sent; closing its connection');
          cut(connection, 'the member could not send an answer; reconnect');
        }
      };
      if (charged) {
        answer();
        return;
      }
      connection.waitingAnswers += 1;
      options.answerBudget.whenRoom(connection.client, () => {
        connection.waitingAnswers -= 1;
        paceReads();
        answer();
      });
      paceReads();
    };
    /** Pause reading while the connection has too much under way (requests, waiting answers); resume once it has little. */
    const paceReads = (): void => {
      const load = connection.inFlight + connection.waitingAnswers;
      if (load >= READ_PAUSE_IN_FLIGHT && !socket.isPaused) socket.pause();
      else if (load <= READ_RESUME_IN_FLIGHT && socket.isPaused) socket.resume();
    };
    const refuse = (id: unknown, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): void => reply({ id: isRequestId(id) ? id : null, ...errorFrame(code, message, extra) });

    socket.on('close', () => {
      connections.delete(connection);
      unreadTotal -= connection.lastUnread;
      connection.lastUnread = 0;
      try {
        options.handlers.disconnected(connection.client);
      } catch (error) {
        logger.error({ event: 'disconnect_failed', error: (error as Error).message }, 'cleaning up a closed connection failed');
      }
    });
    socket.on('error', (error) => logger.warn({ event: 'client_socket_error', error: error.message }, 'a client socket failed'));
    socket.on('message', (data: RawData, isBinary: boolean) => {
      if (tracing) tracePath('client.frame');
      const started = performance.now();
      let type = '(unparsed)';
      try {
        type = serveFrame(data, isBinary);
      } catch (error) {
        // Nothing a client sends may take the member down: answer, log, and carry on.
        logger.error({ event: 'frame_failed', type, error: (error as Error).message }, 'a client frame could not be handled');
        refuse(null, 'INVALID_ARGUMENT', 'the frame could not be handled');
      }
      const tookMs = performance.now() - started;
      if (tookMs > SLOW_REQUEST_MS) logger.warn({ event: 'slow_request', type, tookMs: Math.round(tookMs) }, `a ${type} request held the event loop for ${Math.round(tookMs)} ms`);
    });

    /** One frame, start to hand-off; answers its type (for the slow-request log). */
    const serveFrame = (data: RawData, isBinary: boolean): string => {
      if (isBinary) {
        refuse(null, 'INVALID_ARGUMENT', 'frames are JSON text');
        return '(binary)';
      }
      const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer | ArrayBuffer).byteLength;
      let frame: unknown;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        refuse(null, 'INVALID_ARGUMENT', 'the frame is not valid JSON');
        return '(not JSON)';
      }
      if (!envelope(frame)) {
        const id = (frame as { id?: unknown } | null)?.id;
        refuse(id, 'INVALID_ARGUMENT', isRequestId(id) ? 'a request needs a "type"' : 'a request needs an "id": a string of 1 to 128 characters or a safe integer');
        return '(no envelope)';
      }
      const { id, type } = frame as { id: string | number; type: string };
      const validate = validators.get(type);
      if (validate === undefined) {
        // Counted under one label: a client's made-up types must not grow the metric.
        options.metrics.observeRequest('(unknown)', 'INVALID_ARGUMENT', 0);
        refuse(id, 'INVALID_ARGUMENT', `unknown request type ${JSON.stringify(type.slice(0, 64))}`);
        return '(unknown type)';
      }
      if (!validate(frame)) {
        const problem = validate.errors?.[0];
        options.metrics.observeRequest(type, 'INVALID_ARGUMENT', 0);
        refuse(id, 'INVALID_ARGUMENT', `${type}: ${(problem?.instancePath || '(request)').slice(0, 200)} ${problem?.message ?? 'is invalid'}`);
        return type;
      }
      if (connection.inFlight >= limits.inFlightPerConnectionMax) {
        options.metrics.observeRequest(type, 'RESOURCE_EXHAUSTED', 0);
        refuse(id, 'RESOURCE_EXHAUSTED', `more than ${limits.inFlightPerConnectionMax} requests in flight on this connection; wait for answers`, { limit: limitField(limits, 'inFlightPerConnectionMax') });
        return type;
      }
      // A request costs at least REQUEST_COST_MIN_BYTES of the budget: its bookkeeping (a
      // waiter, a read, a timer) is not free however small its frame.
      const cost = Math.max(bytes, REQUEST_COST_MIN_BYTES);
      if (inFlightBytes + cost > limits.inFlightBytesPerMemberMax) {
        options.metrics.observeRequest(type, 'RESOURCE_EXHAUSTED', 0);
        refuse(id, 'RESOURCE_EXHAUSTED', `this member holds ${inFlightBytes} bytes of requests in flight; retry shortly`, { limit: limitField(limits, 'inFlightBytesPerMemberMax') });
        return type;
      }
      connection.inFlight += 1;
      inFlightBytes += cost;
      paceReads();
      const done = (): void => {
        connection.inFlight -= 1;
        inFlightBytes -= cost;
        paceReads();
      };
      const started = performance.now();
      options.handlers.handle(type as RequestType, frame as unknown as Record<string, unknown>, connection.client).then(
        (answer) => {
          done();
          const code = (answer as { error?: { code?: unknown } }).error?.code;
          options.metrics.observeRequest(type, typeof code === 'string' ? code : 'ok', (performance.now() - started) / 1_000);
          reply({ id, ...answer }, options.handlers.chargedWhenServed(type as RequestType));
        },
        (error: Error) => {
          done();
          logger.error({ event: 'request_failed', type, error: error.message }, 'a request failed unexpectedly');
          // Handlers answer every failure they know; one that escaped may have been proposed.
          const code: ErrorCode = options.handlers.isWrite(type as RequestType) ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE';
          options.metrics.observeRequest(type, code, (performance.now() - started) / 1_000);
          refuse(id, code, 'the member could not serve the request');
        },
      );
      return type;
    };
  };

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    try {
      serveSocket(socket, request.socket, request);
    } catch (error) {
      logger.error({ event: 'connection_failed', error: (error as Error).message }, 'a client connection could not be set up');
      socket.terminate();
    }
  });
  await listener.listen(options.port, options.host);
  http.on('error', (error) => logger.error({ event: 'client_port_error', error: error.message }, 'the client port failed'));
  const port = listener.address().port;
  return {
    port,
    http,
    reloadTls: () => listener.reload(),
    get connections() {
      return connections.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.close(1001, 'member stopping');
        wss.close();
        void listener.close().then(resolve);
      }),
  };
}

/** The CN of the verified client certificate on `request`'s connection, else null. */
function certificateName(request: IncomingMessage): string | null {
  const tls = request.socket as TLSSocket;
  if (!tls.authorized || typeof tls.getPeerCertificate !== 'function') return null;
  const cn = tls.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : null;
}
