/**
 * `pompe flood`: the flooding client of scripts/bench-flood.sh (client/flooder.ts), registered on
 * the `pompe` CLI. A benchmark tool, to be pointed at one's own cluster.
 */
import { Option, type Command } from 'commander';
import { nodeCrypto } from '../common/crypto/node.js';
import { MAX_COMMANDS_PER_BATCH, MAX_CONNECTIONS_PER_ADDRESS } from '../common/limits.js';
import { intArg, secondsArg } from './benchCommand.js';
import { isPompeClientError } from './errors.js';
import { FLOOD_KINDS, runFlood, type FloodKind } from './flooder.js';
import { loadClusterConfig } from './nodeDefaults.js';

export function registerFloodCommand(program: Command): Command {
  return program
    .command('flood')
    .description('a flooding client (benchmarks only): phase-1 batches as fast as the replicas read them, never sequenced')
    .requiredOption('--conf <dir>', 'cluster config directory (holding cluster.json) or file')
    .addOption(new Option('--kind <kind>', 'valid: validly signed batches of one key; junk: bad signatures; fresh: a new key per few batches').choices(FLOOD_KINDS).default('valid'))
    .requiredOption('--duration <s>', 'how long to flood, seconds', secondsArg('--duration', 0.001))
    .option('--batch-size <n>', 'commands per flood batch', intArg('--batch-size', 1, MAX_COMMANDS_PER_BATCH), 10)
    .option('--connections <n>', 'connections to each replica at once (fresh: identities at once)', intArg('--connections', 1, MAX_CONNECTIONS_PER_ADDRESS))
    .option('--local-address <ip>', 'source address of its sockets (e.g. 127.0.0.2, to be a host apart from honest clients on 127.0.0.1)')
    .action(async (o: { conf: string; kind: FloodKind; duration: number; batchSize: number; connections?: number; localAddress?: string }) => {
      try {
        const config = await loadClusterConfig(o.conf, nodeCrypto);
        await runFlood({
          config,
          crypto: nodeCrypto,
          kind: o.kind,
          durationS: o.duration,
          batchSize: o.batchSize,
          connections: o.connections ?? (o.kind === 'fresh' ? 16 : 1),
          ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
          out: (line) => process.stdout.write(`${line}\n`),
        });
      } catch (error) {
        if (!isPompeClientError(error)) throw error;
        process.stderr.write(`pompe flood: ${error.message}\n`);
        process.exitCode = 1;
      }
    });
}
