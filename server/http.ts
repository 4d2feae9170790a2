/**
 * The HTTP port of a replica (and of `pompe dashboard`): operators, scripts and browsers, not
 * clients. A small GET-only route table on node:http: a scrape or a status poll a second is not a
 * hot path. Nothing served here changes a replica's state. The replica's routes are in
 * replicaRoutes.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** Headers and request line must arrive within this long: a slow or stuck scraper does not
 *  hold a socket open for ever. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Answers one GET (or HEAD) request. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

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

export class HttpServer {
  private readonly server: Server;

  constructor(
    private readonly routes: ReadonlyMap<string, RouteHandler>,
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

  /** The bound port (for servers that listen on port 0). */
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
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'only GET\n', { allow: 'GET, HEAD' });
      const route = this.routes.get(path);
      if (route === undefined) return reply(res, 404, 'text/plain', `no ${path} here: GET ${[...this.routes.keys()].join(', ')}\n`);
      await route(req, res);
    } catch (error) {
      this.logger.error({ err: error, path }, 'HTTP handler failed');
      if (!res.headersSent) reply(res, 500, 'text/plain', 'internal error\n');
      else res.end();
    }
  }
}

export function reply(res: ServerResponse, code: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

export function replyJson(res: ServerResponse, code: number, value: unknown): void {
  reply(res, code, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}
