/**
 * The browser client example: serves a page (examples/browser/index.html) that submits commands
 * from the browser straight to a cluster's replicas, with the client library bundled for the
 * browser (`pompe-ts/browser`, by esbuild, a dev dependency) and the cluster's public cluster.json.
 *
 *   npm start &   # or experiments/run_server.sh local: replicas of experiments/conf-local
 *   npm run build && node dist/examples/browser-client.js --conf experiments/conf-local
 *   # then open the printed address
 *
 * Only cluster.json leaves the conf directory; secret files are never served.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { HttpServer, reply, type RouteHandler } from '../server/http.js';
import { isEntryPoint } from '../client/entryPoint.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The page sits beside this module in the sources; dist/examples/ reads it from there. */
const PAGE = [join(HERE, 'browser', 'index.html'), join(HERE, '..', '..', 'examples', 'browser', 'index.html')];

/** Bundles the browser entry of the client library into one ES module. */
export async function bundleBrowserClient(): Promise<string> {
  const { build } = await import('esbuild');
  const result = await build({
    // The entry is resolved from this module: client/browser.ts in the sources, .js in dist/.
    stdin: { contents: "export * from '../client/browser.js';", resolveDir: HERE, loader: 'ts', sourcefile: 'pompe-browser.ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    minify: true,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

async function readPage(): Promise<string> {
  for (const path of PAGE) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      // try the next place
    }
  }
  throw new Error(`examples/browser/index.html not found (looked in ${PAGE.join(', ')})`);
}

export interface BrowserExample {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the page, the bundle and `<confDir>/cluster.json` on host:port (0: any free port). */
export async function serveBrowserExample(confDir: string, host = '127.0.0.1', port = 0): Promise<BrowserExample> {
  const [page, bundle, clusterJson] = await Promise.all([readPage(), bundleBrowserClient(), readFile(join(confDir, 'cluster.json'), 'utf8')]);
  const routes = new Map<string, RouteHandler>([
    ['/', (_req, res) => reply(res, 200, 'text/html; charset=utf-8', page)],
    ['/pompe-browser.js', (_req, res) => reply(res, 200, 'text/javascript; charset=utf-8', bundle)],
    ['/cluster.json', (_req, res) => reply(res, 200, 'application/json', clusterJson)],
  ]);
  const server = new HttpServer(routes, pino({ level: 'warn' }));
  await server.listen(host, port);
  return { url: `http://${host}:${server.port}/`, close: () => server.close() };
}

if (isEntryPoint(import.meta.url)) {
  const program = new Command('browser-client')
    .requiredOption('--conf <dir>', 'the cluster config directory (its cluster.json is served)')
    .option('--host <host>', 'address to serve on', '127.0.0.1')
    .option('--port <port>', 'port to serve on', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('a port from 0 to 65535');
      return n;
    }, 8_001)
    .parse();
  const o = program.opts<{ conf: string; host: string; port: number }>();
  const example = await serveBrowserExample(o.conf, o.host, o.port);
  console.log(`open ${example.url} (Ctrl-C to stop)`);
  process.once('SIGINT', () => void example.close());
}
