/**
 * What a replica serves on its HTTP port:
 *
 *   GET /               the live dashboard (dashboard/page.ts) for this replica
 *   GET /status         the status document (status.ts), JSON
 *   GET /status/stream  the same every second as server-sent events ({ replicas: [status] })
 *   GET /metrics        Prometheus text
 *   GET /health         200, or 503 with the reason (health.ts)
 *   GET /ready          200, or 503 with the reason (health.ts)
 */
import type { Registry } from 'prom-client';
import { DASHBOARD_HTML } from './dashboard/page.js';
import type { Check } from './health.js';
import { reply, replyJson, type RouteHandler } from './http.js';
import type { StatusStream } from './statusStream.js';

export interface ReplicaRouteSources {
  status(): unknown;
  health(): Check;
  ready(): Check;
  readonly registry: Registry;
  readonly stream: StatusStream;
}

const check = (read: () => Check): RouteHandler => (_req, res) => {
  const c = read();
  replyJson(res, c.ok ? 200 : 503, c);
};

export function replicaRoutes(s: ReplicaRouteSources): ReadonlyMap<string, RouteHandler> {
  return new Map<string, RouteHandler>([
    ['/', (_req, res) => reply(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML)],
    ['/status', (_req, res) => replyJson(res, 200, s.status())],
    ['/status/stream', s.stream.attach],
    ['/metrics', async (_req, res) => reply(res, 200, s.registry.contentType, await s.registry.metrics())],
    ['/health', check(() => s.health())],
    ['/ready', check(() => s.ready())],
  ]);
}
