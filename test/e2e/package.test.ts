/**
 * The npm package as a user gets it: `npm pack` of this tree (built by `npm test` before the
 * tests run; --ignore-scripts so that packing does not rebuild dist/ under the other tests), the
 * tarball installed into an empty project with production dependencies only (from the local npm
 * cache where it can), then its `pompe` bin makes a conf, runs a replica and the benchmark client,
 * and its library entry points load.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, freePortRange, waitFor } from './cluster.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** Packing, then installing ~60 packages (two uWS builds among them) from the cache. */
const INSTALL_TIMEOUT_MS = 240_000;

let work: string;
let app: string;
let replica: ChildProcess | null = null;

function run(command: string, args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, maxBuffer: 16 * 1024 * 1024, timeout: INSTALL_TIMEOUT_MS }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before the end-to-end tests`);
  work = await mkdtemp(join(tmpdir(), 'pompe-package-'));
  app = join(work, 'app');
  await mkdir(app);
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  replica?.kill('SIGKILL');
  await rm(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('packs only what a user needs, installs with production dependencies, and runs gen-conf, a replica and the client', async () => {
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], REPO);
    expect(pack.code, pack.stderr).toBe(0);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const paths = packed!.files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/server/cli.js', 'dist/client/client.d.ts']));
    expect(paths.filter((p) => !/^(LICENSE|README\.md|package\.json|dist\/.*\.(js|d\.ts))$/.test(p))).toEqual([]);
    expect(paths.filter((p) => /\.test\.|\/test[A-Z]\w*\.|^dist\/(sim|scripts|examples|test)\//.test(p))).toEqual([]);

    // The native packages' install scripts build from source where no prebuilt binary fits: npm 11
    // runs a dependency's scripts only if the installing project allows them, as ours does.
    const { allowScripts } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'pompe-user', private: true, type: 'module', allowScripts }));
    const install = await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed!.filename)], app);
    expect(install.code, install.stderr).toBe(0);
    const installed = await readdir(join(app, 'node_modules'));
    // Dev tools and the plotting libraries (optional peers) stay out of a replica's install.
    for (const absent of ['typescript', 'vitest', 'eslint', 'vega', 'vega-lite']) expect(installed).not.toContain(absent);

    const pompe = join(app, 'node_modules', '.bin', 'pompe');
    expect((await run(pompe, ['--version'], app)).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const peer = await freePortRange(1);
    const client = await freePortRange(1, [peer]);
    const http = await freePortRange(1, [peer, client]);
    const ports = ['--base-peer-port', String(peer), '--base-client-port', String(client), '--base-http-port', String(http)];
    const gen = await run(pompe, ['gen-conf', '--replicas', '1', '--dev-single-replica', '--out', 'conf', ...ports], app);
    expect(gen.code, gen.stderr).toBe(0);

    let output = '';
    replica = spawn(pompe, ['replica', '--conf', 'conf', '--id', '0', '--log-file', 'replica.log'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    replica.stdout!.on('data', (d: Buffer) => (output += String(d)));
    replica.stderr!.on('data', (d: Buffer) => (output += String(d)));
    const status = await waitFor(
      'the installed replica to serve /status',
      async () => {
        if (replica?.exitCode !== null) throw new Error(`replica exited: ${output}`);
        const res = await fetch(`http://127.0.0.1:${http}/status`);
        // /status answers from before the store opens; the transport section comes once it runs.
        const json = res.ok ? ((await res.json()) as { phase: string; transport?: { server: { backend: string } } }) : undefined;
        return json?.phase === 'running' && json.transport !== undefined ? { transport: json.transport } : undefined;
      },
      30_000,
      100,
    );
    expect(['uws', 'ws']).toContain(status.transport.server.backend);

    const bench = await run(pompe, ['bench', '--conf', 'conf', '--clients', '1', '--duration', '1', '--batch-size', '10', '--log-dir', 'logs'], app);
    expect(bench.code, bench.stderr).toBe(0);
    const executed = /executed: ([\d,]+) commands/.exec(bench.stdout);
    expect(Number(executed?.[1]?.replace(/,/g, '') ?? 0)).toBeGreaterThan(0);

    const library = await run(
      process.execPath,
      ['--input-type=module', '-e', "const c = await import('pompe-ts/client'); const r = await import('pompe-ts/replica'); console.log(typeof c.PompeClient, typeof r.startReplica)"],
      app,
    );
    expect(library.stdout.trim()).toBe('function function');
    replica.kill('SIGTERM');
    await new Promise((resolve) => replica!.once('exit', resolve));
    expect(replica.exitCode).toBe(0);
    replica = null;
  }, INSTALL_TIMEOUT_MS);
});
