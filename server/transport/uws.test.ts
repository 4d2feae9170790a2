/**
 * Native detection of uWebSockets.js, both ways. The package picks native or fallback once per
 * process (at its first require), so the fallback is exercised in child processes started with
 * UWS_USE_FALLBACK=1, running this tree transpiled to JavaScript.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_UWS_FALLBACK_ENV, isNativeUws, loadUws, UWS_FORCE_FALLBACK_ENV, uwsBinaryPath } from './uws.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

describe('loadUws in this process', () => {
  it('loads the native binary and recognises it as native', () => {
    const loaded = loadUws();
    expect(loaded.native).toBe(true);
    expect(isNativeUws(loaded.uws)).toBe(true);
    expect(uwsBinaryPath()).toMatch(/binaries\/uws_\w+_\w+_\d+\.node$/);
  });

  it('recognises the package’s JS fallback as not native', () => {
    const fallback: unknown = require('uWebSockets.js/dist/index.js');
    expect(isNativeUws(fallback)).toBe(false);
    expect(isNativeUws(null)).toBe(false);
    expect(isNativeUws({ App: () => undefined })).toBe(false);
  });
});

/** This repository's common/ and server/ transpiled to ESM JavaScript in a temporary directory. */
let compiled = '';

function transpileTree(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    if (entry.isDirectory()) {
      transpileTree(source, join(to, entry.name));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      const out = ts.transpileModule(readFileSync(source, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
        fileName: source,
      });
      mkdirSync(to, { recursive: true });
      writeFileSync(join(to, entry.name.replace(/\.ts$/, '.js')), out.outputText);
    }
  }
}

/** The child: start a 4-replica mesh, exchange one message per pair, print the outcome as JSON. */
const CHILD = `
import { startTestCluster, waitUntil, commandMsg } from './server/transport/testing.js';
import { replicaId } from './common/ids.js';
try {
  const c = await startTestCluster({ n: 4 });
  await waitUntil(() => c.transports.every((t) => t.peersUp().length === 3), 'mesh');
  c.transports.forEach((t, i) => { for (let to = 0; to < 4; to++) if (to !== i) t.sendToPeer(replicaId(to), commandMsg(i)); });
  await waitUntil(() => c.inboxes.every((inbox) => inbox.peer.length === 3), 'delivery');
  const backend = c.transports[0].serverBackend();
  await c.close();
  console.log(JSON.stringify({ ok: true, backend }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, name: e.name, message: e.message }));
}
`;

interface ChildResult {
  readonly ok: boolean;
  readonly backend?: string;
  readonly name?: string;
  readonly message?: string;
  readonly stdout: string;
  readonly stderr: string;
}

function runChild(env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const childEnv = { ...process.env, ...env };
    for (const key of [UWS_FORCE_FALLBACK_ENV, ALLOW_UWS_FALLBACK_ENV, 'TRANSPORT_TEST_LOG']) if (!(key in env)) delete childEnv[key];
    execFile(process.execPath, [join(compiled, 'child.mjs')], { cwd: compiled, env: childEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      // The outcome is the one line with an "ok" field (log lines may come before or after it).
      const last = stdout.split('\n').find((line) => line.startsWith('{"ok":')) ?? '';
      try {
        resolvePromise({ ...(JSON.parse(last) as Omit<ChildResult, 'stdout' | 'stderr'>), stdout, stderr });
      } catch {
        reject(new Error(`child failed (${String(error)}): ${stdout}\n${stderr}`));
      }
    });
  });
}

describe('loadUws in a child process', () => {
  beforeAll(() => {
    compiled = mkdtempSync(join(tmpdir(), 'pompe-uws-test-'));
    for (const dir of ['common', 'server']) transpileTree(join(repo, dir), join(compiled, dir));
    writeFileSync(join(compiled, 'package.json'), JSON.stringify({ type: 'module' }));
    symlinkSync(join(repo, 'node_modules'), join(compiled, 'node_modules'), 'dir');
    writeFileSync(join(compiled, 'child.mjs'), CHILD);
  });
  afterAll(() => {
    if (compiled !== '') rmSync(compiled, { recursive: true, force: true });
  });

  it('uses native uWS when the binary loads', async () => {
    const result = await runChild({});
    expect(result).toMatchObject({ ok: true, backend: 'uws' });
  });

  it('refuses to start on the fallback unless allowed, with a message that says how to allow it', async () => {
    const result = await runChild({ [UWS_FORCE_FALLBACK_ENV]: '1' });
    expect(result.ok).toBe(false);
    expect(result.name).toBe('UwsFallbackError');
    expect(result.message).toMatch(/uWebSockets\.js native binary did not load \(UWS_USE_FALLBACK=1 is set\); refusing to start: set POMPE_ALLOW_UWS_FALLBACK=1/);
  });

  it('runs (slowly, on ws) when the fallback is allowed, and warns loudly', async () => {
    const result = await runChild({ [UWS_FORCE_FALLBACK_ENV]: '1', [ALLOW_UWS_FALLBACK_ENV]: '1', TRANSPORT_TEST_LOG: 'warn' });
    expect(result).toMatchObject({ ok: true, backend: 'ws' });
    expect(result.stdout).toMatch(/native binary did not load \(UWS_USE_FALLBACK=1 is set\); running on the SLOW fallback/);
  });
});
