/** The `pompe` command as users run it (the built dist/server/cli.js). */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from './cluster.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pompe-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pompe', () => {
  it('has --help for itself and every command', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const command of ['keygen', 'gen-conf', 'replica', 'systemd', 'process', 'bench']) {
      expect(top.stdout).toContain(command);
      const help = await runCli([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: pompe ${command}`);
    }
  });

  it('prints the package version', async () => {
    const out = await runCli(['--version']);
    expect(out.code).toBe(0);
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(out.stdout.trim()).toBe(pkg.version);
  });

  it('exits 2 on usage errors, with a hint', async () => {
    const bad = await runCli(['gen-conf', '--replicas', 'four', '--out', dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--replicas must be an integer/);
    expect((await runCli(['replica', '--conf', dir])).code).toBe(2);
    expect((await runCli(['no-such-command'])).code).toBe(2);
    expect((await runCli(['replica', '--conf', dir, '--id', '0', '--server-backend', 'fast'])).stderr).toMatch(/expected one of auto, uws, ws/);
  });

  it('gen-conf names its options in errors: an empty host entry, too few replicas', async () => {
    const emptyHost = await runCli(['gen-conf', '--replicas', '4', '--hosts', '10.0.0.1,,10.0.0.2', '--out', join(dir, 'x')]);
    expect(emptyHost.code).toBe(2);
    expect(emptyHost.stderr).toMatch(/without empty entries, got '10.0.0.1,,10.0.0.2'/);
    const one = await runCli(['gen-conf', '--replicas', '1', '--out', join(dir, 'x')]);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/give --replicas 1 --dev-single-replica/);
    expect(one.stderr).not.toMatch(/devSingleReplica/);
    expect((await runCli(['gen-conf', '--replicas', '1', '--dev-single-replica', '--out', join(dir, 'single')])).code).toBe(0);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it("gen-conf warns when many replicas share a host and Δ is the default, not when Δ was given", async () => {
    const crowded = await runCli(['gen-conf', '--replicas', '7', '--out', join(dir, 'crowded')]);
    expect(crowded.code).toBe(0);
    expect(crowded.stderr).toMatch(/warning: 7 replicas share each host.*--delta-us/);
    const chosen = await runCli(['gen-conf', '--replicas', '7', '--delta-us', '250000', '--out', join(dir, 'chosen')]);
    expect(chosen.stderr).toBe('');
    expect(JSON.parse(await readFile(join(dir, 'chosen', 'cluster.json'), 'utf8')).protocol.deltaUs).toBe(250_000);
  });

  it('keys made on each host: keygen prints public keys, gen-conf --public-keys writes no secret, each replica loads its own', async () => {
    const conf = join(dir, 'per-host');
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) {
      const out = await runCli(['keygen', '--replica', String(i), '--out', join(conf, `replica-${i}.secret.json`)]);
      expect(out.code).toBe(0);
      expect((await stat(join(conf, `replica-${i}.secret.json`))).mode & 0o777).toBe(0o600);
      keys.push(out.stdout.trim());
    }
    await writeFile(join(dir, 'keys.txt'), `# replica 0..3\n${keys.join('\n')}\n`);
    const gen = await runCli(['gen-conf', '--replicas', '4', '--public-keys', join(dir, 'keys.txt'), '--out', conf]);
    expect(gen.stderr).toBe('');
    expect(gen.code).toBe(0);
    const cluster = JSON.parse(await readFile(join(conf, 'cluster.json'), 'utf8')) as { replicas: { publicKey: string }[] };
    expect(cluster.replicas.map((r) => r.publicKey)).toEqual(keys);
    expect(gen.stdout).toMatch(/wrote 3 files/); // cluster.json, server.hosts, client.hosts: no secret
    const inline = await runCli(['gen-conf', '--replicas', '4', '--public-keys', keys.slice(0, 3).join(','), '--out', join(dir, 'three-keys')]);
    expect(inline.code).toBe(1);
    expect(inline.stderr).toMatch(/3 public keys were given for 4 replicas/);
  });

  it('keygen prints the public key of the file it writes', async () => {
    const out = await runCli(['keygen', '--out', join(dir, 'k.json'), '--replica', '3']);
    expect(out.code).toBe(0);
    const file = JSON.parse(await readFile(join(dir, 'k.json'), 'utf8')) as { replica: number; publicKey: string };
    expect(file.replica).toBe(3);
    expect(out.stdout.trim()).toBe(file.publicKey);
  });

  it('gen-conf writes a conf; replica reports a bad one in one line and exits 1', async () => {
    const conf = join(dir, 'conf');
    const gen = await runCli(['gen-conf', '--replicas', '4', '--out', conf, '--commit-rule', '3-chain']);
    expect(gen.code).toBe(0);
    expect(JSON.parse(await readFile(join(conf, 'cluster.json'), 'utf8')).protocol.commitRule).toBe('3-chain');
    expect((await runCli(['gen-conf', '--replicas', '4', '--out', conf])).code).toBe(1);
    const wrongId = await runCli(['replica', '--conf', conf, '--id', '9']);
    expect(wrongId.code).toBe(1);
    expect(wrongId.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrongId.stderr).toMatch(/no replica 9/);
  });

  it('process says so when a directory holds no logs of the kind, and exits 1', async () => {
    const empty = await mkdtemp(join(dir, 'no-logs-'));
    const out = await runCli(['process', 'exec', empty]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/no exec logs there/);
    await writeFile(join(empty, 'client0.exec.log'), '');
    const one = await runCli(['process', 'exec', empty]);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('Total: 0');
  });

  it('replica reports a refused start in one line on stderr and nothing on stdout', async () => {
    const conf = join(dir, 'loose');
    expect((await runCli(['gen-conf', '--replicas', '4', '--out', conf])).code).toBe(0);
    const { chmod } = await import('node:fs/promises');
    await chmod(join(conf, 'replica-0.secret.json'), 0o644);
    const out = await runCli(['replica', '--conf', conf, '--id', '0']);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr.trim().split('\n')).toEqual([expect.stringMatching(/replica-0\.secret\.json: .*readable by group or others \(mode 644\); chmod 600 it$/)]);
  });

  it('systemd writes a unit that systemd-analyze verify accepts', async (ctx) => {
    const conf = join(dir, 'unit-conf');
    expect((await runCli(['gen-conf', '--replicas', '4', '--out', conf])).code).toBe(0);
    const unitFile = join(dir, 'units', 'pompe-replica-2.service');
    const out = await runCli(['systemd', '--conf', conf, '--id', '2', '--user', 'pompe', '--out', unitFile]);
    expect(out.code).toBe(0);
    const unit = await readFile(unitFile, 'utf8');
    expect(unit).toMatch(/^User=pompe$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^LimitNOFILE=\d+$/m);
    expect(unit).toMatch(/^MemoryMax=/m);
    expect(unit).toMatch(/^Environment=MALLOC_ARENA_MAX=2$/m);
    expect(unit).toContain(`ExecStart=${process.execPath} ${CLI} replica --conf ${conf} --id 2 --data-dir /var/lib/pompe/replica-2`);
    if (!existsSync(SYSTEMD_ANALYZE)) {
      console.warn(`SKIPPED: ${SYSTEMD_ANALYZE} is missing, so the unit was not verified (apt-get install systemd)`);
      ctx.skip();
    }
    const verify = await new Promise<{ code: number; output: string }>((resolve) =>
      execFile(SYSTEMD_ANALYZE, ['verify', unitFile], (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), output: stdout + stderr })),
    );
    expect(verify).toEqual({ code: 0, output: '' });
  });
});
