/**
 * `pompe dashboard`: one page for the whole cluster. It reads cluster.json (public keys and
 * addresses only), and while someone watches, asks every replica's /status once a second and
 * streams the set to the same page each replica serves (page.ts). A replica that does not answer
 * shows as unreachable with the reason; the others go on.
 *
 *   GET /               the dashboard
 *   GET /status         { replicas: [status | { replica, error }] }, JSON
 *   GET /status/stream  the same every second (server-sent events)
 */
import type { Logger } from 'pino';
import type { ClusterConfig } from '../../common/config.js';
import { reply, replyJson, HttpServer, type RouteHandler } from '../http.js';
import { StatusStream } from '../statusStream.js';
import { DASHBOARD_HTML } from './page.js';

/** A replica's /status normally answers in milliseconds; one that takes longer than this is shown
 *  as unreachable for this round rather than holding up the others' figures. */
export const STATUS_POLL_TIMEOUT_MS = 900;

export type ReplicaEntry = Record<string, unknown> & { readonly replica: number };

export interface ClusterSnapshot {
  readonly replicas: readonly ReplicaEntry[];
}

export interface ClusterDashboardOptions {
  readonly config: ClusterConfig;
  readonly host: string;
  /** 0: any free port (see `port` on the result). */
  readonly port: number;
  readonly logger: Logger;
}

export interface RunningDashboard {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

function statusUrl(host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${h}:${port}/status`;
}

/** Every replica's status now, in replica order. */
export async function pollCluster(config: ClusterConfig, timeoutMs = STATUS_POLL_TIMEOUT_MS): Promise<ClusterSnapshot> {
  const replicas = await Promise.all(
    config.replicas.map(async (r): Promise<ReplicaEntry> => {
      try {
        const res = await fetch(statusUrl(r.host, r.httpPort), { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) return { replica: r.id, error: `HTTP ${res.status} from ${r.host}:${r.httpPort}` };
        return (await res.json()) as ReplicaEntry;
      } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
        return { replica: r.id, error: `unreachable at ${r.host}:${r.httpPort} (${cause})` };
      }
    }),
  );
  return { replicas };
}

export async function startClusterDashboard(o: ClusterDashboardOptions): Promise<RunningDashboard> {
  const snapshot = (): Promise<ClusterSnapshot> => pollCluster(o.config);
  const stream = new StatusStream(snapshot, o.logger);
  const routes = new Map<string, RouteHandler>([
    ['/', (_req, res) => reply(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML)],
    ['/status', async (_req, res) => replyJson(res, 200, await snapshot())],
    ['/status/stream', stream.attach],
  ]);
  const server = new HttpServer(routes, o.logger);
  await server.listen(o.host, o.port);
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    port: server.port,
    url: `http://${host}:${server.port}/`,
    close: async () => {
      stream.close();
      await server.close();
    },
  };
}
