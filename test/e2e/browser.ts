/**
 * A real headless browser for the end-to-end tests: the system's Chromium (Debian's `chromium`
 * package; `.ci/run` installs it when it can) driven by puppeteer-core, which downloads nothing.
 * Where no browser exists the tests that need one skip, and say so loudly.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'puppeteer-core';

/** Where the browser tests leave their screenshots (git-ignored). */
export const ARTIFACTS_DIR = fileURLToPath(new URL('../../.artifacts/', import.meta.url));

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The browser to drive: $POMPE_CHROMIUM, or the first system Chromium found; null if none. */
export function findChromium(): string | null {
  const fromEnv = process.env['POMPE_CHROMIUM'];
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(fromEnv) ? fromEnv : null;
  return CANDIDATES.find((path) => existsSync(path)) ?? null;
}

/** Prints why browser tests are skipped, so a green run without them is not mistaken for a full one. */
export function warnNoBrowser(what: string): void {
  const line = '!'.repeat(100);
  console.warn(`\n${line}\n!!! SKIPPED: ${what} — no Chromium found (apt-get install chromium, or set POMPE_CHROMIUM).\n${line}\n`);
}

export interface TestBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

export async function launchBrowser(executablePath: string): Promise<TestBrowser> {
  const { launch } = await import('puppeteer-core');
  const userDataDir = await mkdtemp(join(tmpdir(), 'pompe-chromium-'));
  const browser = await launch({
    executablePath,
    headless: true,
    userDataDir,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  return join(ARTIFACTS_DIR, name);
}
