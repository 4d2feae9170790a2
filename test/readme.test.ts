/**
 * The README's TypeScript examples run as written: every ```ts block is compiled (esbuild strips
 * the types) and run by Node as a module inside this package, so its `pompe-ts/...` imports
 * resolve through package.json's exports to the built dist/, with a one-replica development
 * cluster's configuration in ./conf of its working directory. Each must exit 0 on its own.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { transform } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeCrypto } from '../common/crypto/node.js';
import { freePortRange } from '../server/freePorts.js';
import { genConf } from '../server/genConf.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Inside the package, so that Node resolves `pompe-ts/...` to this package (self-reference). */
const SNIPPET_DIR = join(ROOT, '.artifacts', 'readme');
const SNIPPET_TIMEOUT_MS = 30_000;

const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
const snippets = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

let workDir: string;
beforeAll(async () => {
  await mkdir(SNIPPET_DIR, { recursive: true });
});
afterAll(async () => {
  await rm(SNIPPET_DIR, { recursive: true, force: true });
});

describe('README examples', () => {
  it('has TypeScript examples to check', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(4);
  });

  it.each(snippets.map((code, i) => [i + 1, code.split('\n')[0]!, code] as const))('example %i (%s) runs as written', async (i, _first, code) => {
    workDir = await mkdtemp(join(tmpdir(), 'pompe-readme-'));
    try {
      const base = await freePortRange(3);
      await genConf({ replicas: 1, devSingleReplica: true, out: join(workDir, 'conf'), basePeerPort: base, baseClientPort: base + 1, baseHttpPort: base + 2 }, nodeCrypto);
      const js = (await transform(code, { loader: 'ts', format: 'esm', target: 'node20' })).code;
      const file = join(SNIPPET_DIR, `example-${i}.mjs`);
      await writeFile(file, js);
      const run = await promisify(execFile)(process.execPath, [file], { cwd: workDir, timeout: SNIPPET_TIMEOUT_MS }).catch((error: { stdout?: string; stderr?: string; code?: unknown }) => {
        throw new Error(`example ${i} failed (${String(error.code)}):\n${code}\n--- stdout\n${error.stdout ?? ''}\n--- stderr\n${error.stderr ?? ''}`);
      });
      expect(run.stderr.replace(/^.*ExperimentalWarning.*\n?/gm, '')).not.toMatch(/Error/);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }, SNIPPET_TIMEOUT_MS + 10_000);
});
