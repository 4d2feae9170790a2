/**
 * data.sh collects a run: the logs move (not copied) into a new run folder, optionally gzipped,
 * with run.json beside them; the process script reads the folder as it is. Runs the built dist/.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatLogLine } from '../client/latencyLog.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { genConf } from '../server/genConf.js';
import { runProcess } from './process.js';

const DATA_SH = fileURLToPath(new URL('./data.sh', import.meta.url));
const RUN_INFO = fileURLToPath(new URL('../dist/experiments/runInfo.js', import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pompe-data-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('experiments/data.sh', () => {
  it('moves the logs into a run folder, gzips them on request, and writes run.json', async () => {
    if (!existsSync(RUN_INFO)) throw new Error(`${RUN_INFO} is missing: run \`npm run build\` first`);
    const logDir = join(dir, 'log');
    const dataDir = join(dir, 'data');
    await mkdir(logDir);
    const nowUs = Date.now() * 1000;
    await writeFile(join(logDir, 'client0.exec.log'), [formatLogLine(nowUs, 2000), formatLogLine(nowUs + 1000, 3000)].join('\n') + '\n');
    await writeFile(join(logDir, 'client0.order.log'), formatLogLine(nowUs, 1000) + '\n');
    const bench = {
      options: { clients: 4, mode: 'direct', batchSize: 1000, outstanding: 4, rate: null, durationS: 30 },
      startedAt: '2026-11-20T12:00:00.000Z',
      endedAt: '2026-11-20T12:00:33.000Z',
      summary: { executedPerSecond: 1234.5, orderedPerSecond: 1300, executed: 37035, failedCommands: 0, timedOutCommands: 0, unfinished: 0 },
    };
    await writeFile(join(logDir, 'client0.bench.json'), JSON.stringify(bench));
    await writeFile(join(logDir, 'replica-0.log'), 'not a client log\n');

    const confDir = join(dir, 'conf');
    await genConf({ replicas: 4, out: confDir }, nodeCrypto);

    const { stdout } = await promisify(execFile)('bash', [DATA_SH, 'local'], {
      env: { ...process.env, POMPE_LOG_DIR: logDir, POMPE_DATA_DIR: dataDir, POMPE_CONF_DIR: confDir, POMPE_GZIP: '1' },
    });
    expect(stdout).toMatch(/4 files in /);
    // Moved: nothing of the run is left behind, and what is not the clients' stays.
    expect((await readdir(logDir)).sort()).toEqual(['replica-0.log']);
    const name = await readlink(join(dataDir, 'latest'));
    const run = join(dataDir, name);
    expect(name).toMatch(/^local-\d{8}-\d{6}$/);
    expect((await readdir(run)).sort()).toEqual(['client0.bench.json', 'client0.exec.log.gz', 'client0.order.log.gz', 'run.json']);

    const info = JSON.parse(await readFile(join(run, 'run.json'), 'utf8')) as Record<string, unknown>;
    expect(info).toMatchObject({
      name,
      startedAt: bench.startedAt,
      endedAt: bench.endedAt,
      parameters: 'n=4, 4 client(s), direct mode, batch 1000, 4 outstanding, 30 s',
      totals: { benchProcesses: 1, clients: 4, executedPerSecond: 1234.5, executed: 37035 },
      conf: { n: 4, f: 1, q: 3 },
    });
    expect(String(info['gitRevision'])).toMatch(/^[0-9a-f]{40}(\+dirty)?$/);

    let out = '';
    expect(await runProcess(['exec', run], { out: (t) => void (out += t), err: () => {} })).toBe(0);
    expect(out).toMatch(/^Total: 2 {2}transactions/);
  });
});
