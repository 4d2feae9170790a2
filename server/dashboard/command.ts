/**
 * `pompe dashboard --conf <dir>`: serves the cluster dashboard (cluster.ts) until SIGINT/SIGTERM.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { pino } from 'pino';
import { isPompeClientError } from '../../client/errors.js';
import { loadClusterConfig } from '../../client/nodeDefaults.js';
import { nodeCrypto } from '../../common/crypto/node.js';
import { HttpListenError } from '../http.js';
import { startClusterDashboard } from './cluster.js';

/** The default port: outside gen-conf's default replica ports (10000+, 20000+, 30000+). */
export const DEFAULT_DASHBOARD_PORT = 8_000;

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65_535) throw new InvalidArgumentError(`a port is an integer from 0 to 65535, got '${value}'`);
  return n;
}

export function registerDashboardCommand(program: Command): Command {
  return program
    .command('dashboard')
    .description('serve a live dashboard of every replica of a cluster (polls their /status)')
    .requiredOption('--conf <dir>', 'cluster config directory (holding cluster.json) or file')
    .option('--host <host>', 'address to serve on', '127.0.0.1')
    .option('--port <port>', 'port to serve on (0: any free port)', port, DEFAULT_DASHBOARD_PORT)
    .action(async (o: { conf: string; host: string; port: number }) => {
      let config;
      try {
        config = await loadClusterConfig(o.conf, nodeCrypto);
      } catch (error) {
        process.stderr.write(`pompe dashboard: ${isPompeClientError(error) ? error.message : String(error)}\n`);
        process.exitCode = 1;
        return;
      }
      const logger = pino({ level: 'warn' });
      let dashboard;
      try {
        dashboard = await startClusterDashboard({ config, host: o.host, port: o.port, logger });
      } catch (error) {
        if (!(error instanceof HttpListenError)) throw error;
        process.stderr.write(`pompe dashboard: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`dashboard of ${config.n} replicas at ${dashboard.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => void dashboard.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
