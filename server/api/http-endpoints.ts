/**
 * The client port's HTTP side, for probes and operators: GET /health, /livez, /readyz, /status
 * and /metrics, each answered from what the member reports (ClientServerOptions); anything else
 * a 404 that names the paths. A WebSocket upgrade on the same port is client-server.ts's.
 *
 * Must never: do work beyond reading the member's state for one request (every endpoint answers
 * from what is at hand, /metrics from the registry).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the endpoints read of the member. */
export interface HttpEndpointSources {
  readonly healthy: () => boolean;
  readonly status: () => Record<string, unknown>;
  readonly live: () => boolean;
  readonly readiness: (exclude: ReadonlySet<string>) => { readonly ready: boolean; readonly failed: readonly string[] };
  readonly metrics: { text(): Promise<string>; readonly contentType: string };
}

export function serveHttp(request: IncomingMessage, response: ServerResponse, options: HttpEndpointSources): void {
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
  if (request.method === 'GET' && path === '/livez') {
    const live = options.live();
    respondJson(response, live ? 200 : 503, { live: live ? 'ok' : 'stopped' });
    return;
  }
  if (request.method === 'GET' && path === '/readyz') {
    // `?exclude=alarm` (as etcd 3.6 takes it): ready despite an alarm — for a load balancer that
    // must keep sending the deletes and compaction that clear a NO_SPACE alarm.
    const exclude = new Set(new URLSearchParams((request.url ?? '').split('?')[1] ?? '').getAll('exclude'));
    const { ready, failed } = options.readiness(exclude);
    respondJson(response, ready ? 200 : 503, { ready: ready ? 'ok' : 'not ready', failed });
    return;
  }
  if (request.method === 'GET' && path === '/metrics') {
    options.metrics.text().then(
      (text) => {
        response.writeHead(200, { 'content-type': options.metrics.contentType });
        response.end(text);
      },
      (error: Error) => respondJson(response, 500, { error: `metrics: ${error.message}` }),
    );
    return;
  }
  respondJson(response, 404, { error: 'not found: try GET /health, /livez, /readyz, /status, /metrics, or a WebSocket for the client protocol' });
}

export function respondJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
