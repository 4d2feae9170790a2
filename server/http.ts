/**
 * The replica's HTTP port (operators and scripts, not clients): GET /status (JSON) and
 * GET /metrics (Prometheus text). node:http is enough: a scrape a second is not a hot path.
 * Bound to the replica's configured host; nothing here changes the replica's state.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** Headers and request line must arrive within this long: a slow or stuck scraper does not
 *  hold a socket open for ever. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface HttpRoutes {
  status(): unknown;
  readonly registry: Registry;
}

/** The HTTP port could not be bound (in use, or an address this host does not have). */
export class HttpListenError extends Error {
  override readonly name = 'HttpListenError';

  constructor(
    readonly host: string,
    readonly port: number,
    detail: string,
  ) {
    super(`cannot serve HTTP on ${host}:${port} (${detail})`);
  }
}

export class StatusServer {
  private readonly server: Server;

  constructor(
    private readonly routes: HttpRoutes,
    private readonly logger: Logger,
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.headersTimeout = REQUEST_TIMEOUT_MS;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => reject(new HttpListenError(host, port, error.code ?? error.message));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.logger.error({ err: error }, 'HTTP server error'));
        resolve();
      });
    });
  }

  /** The bound port (for tests that listen on port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'only GET\n', { allow: 'GET, HEAD' });
      switch (path) {
        case '/status':
          return reply(res, 200, 'application/json', `${JSON.stringify(this.routes.status(), null, 2)}\n`);
        case '/metrics':
          return reply(res, 200, this.routes.registry.contentType, await this.routes.registry.metrics());
        case '/':
          return reply(res, 200, 'text/plain', 'pompe replica: GET /status, GET /metrics\n');
        default:
          return reply(res, 404, 'text/plain', `no ${path} here: GET /status or /metrics\n`);
      }
    } catch (error) {
      this.logger.error({ err: error, path }, 'HTTP handler failed');
      if (!res.headersSent) reply(res, 500, 'text/plain', 'internal error\n');
      else res.end();
    }
  }
}

function reply(res: ServerResponse, code: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}
