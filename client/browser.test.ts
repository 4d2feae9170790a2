/**
 * The browser entry stays browser-safe: esbuild bundles `pompe-ts/browser` for the browser platform
 * with nothing marked external, which fails on any Node built-in (node:fs, node:crypto, ws, …), and
 * the bundle holds no `node:` import. (The headless-browser test loads such a bundle for real.)
 */
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('browser entry', () => {
  it('bundles for the browser without any Node built-in or server module', async () => {
    const result = await build({
      entryPoints: [new URL('./browser.ts', import.meta.url).pathname],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((p) => p.startsWith('node:') || /(^|\/)(server|sim)\//.test(p) || /nodeDefaults|wsTransport|crypto\/node/.test(p))).toEqual([]);
    const packages = new Set(inputs.filter((p) => p.includes('node_modules/')).map((p) => p.split('node_modules/')[1]!.split('/').slice(0, p.includes('@') ? 2 : 1).join('/')));
    // msgpackr and @noble/* run in browsers; nothing else may come in.
    expect([...packages].filter((p) => p !== 'msgpackr' && !p.startsWith('@noble/'))).toEqual([]);
    expect(result.outputFiles[0]!.text).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });
});
