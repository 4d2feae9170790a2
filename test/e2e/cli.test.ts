/** The `pompe` command as users run it (the built dist/server/cli.js). */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cluster.js';

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
    for (const command of ['keygen', 'gen-conf', 'replica', 'process', 'bench']) {
      expect(top.stdout).toContain(command);
      const help = await runCli([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: pompe ${command}`);
    }
  });

  it('exits 2 on usage errors, with a hint', async () => {
    const bad = await runCli(['gen-conf', '--replicas', 'four', '--out', dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--replicas must be an integer/);
    expect((await runCli(['replica', '--conf', dir])).code).toBe(2);
    expect((await runCli(['no-such-command'])).code).toBe(2);
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

  it('process summarises an empty log directory without crashing', async () => {
    const out = await runCli(['process', 'exec', dir]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('Total: 0');
  });
});
