/**
 * The dashboard and the browser example in a real headless Chromium, against four `pompe replica`
 * processes: a replica's page at `/` shows its figures moving while load runs; `pompe dashboard`
 * shows every replica, and with f+1 replicas stopped the others' /ready answers 503 with the
 * reason (200 again once they are back); the browser example page submits commands that execute.
 * Screenshots go to .artifacts/ (look at them: the test checks figures, not looks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { encodeKvCommand, KvOp } from '../../ordering/kvStore.js';
import { PompeClient } from '../../client/client.js';
import { serveBrowserExample, type BrowserExample } from '../../examples/browser-client.js';
import { artifactPath, findChromium, launchBrowser, warnNoBrowser, type TestBrowser } from './browser.js';
import { CLI, TestCluster, waitFor } from './cluster.js';

/** The little of the DOM that the functions run in the page touch (the project type-checks
 *  without lib.dom; inside those functions `globalThis` is the page's window). */
interface PageElement {
  readonly textContent: string | null;
  value: string;
  readonly disabled: boolean;
  readonly dataset: Record<string, string | undefined>;
}
interface PageWindow {
  readonly document: {
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): { readonly length: number };
    getElementById(id: string): PageElement | null;
    readonly documentElement: { readonly scrollWidth: number };
  };
  readonly innerWidth: number;
}

const chromium = findChromium();
if (chromium === null) warnNoBrowser('the dashboard and browser-example tests (test/e2e/dashboard.test.ts)');

let cluster: TestCluster;
let browser: TestBrowser;

/** Keeps `inFlight` commands submitted until stopped; counts what executed. */
class Load {
  executed = 0;
  private running = true;
  private readonly done: Promise<void>;

  private constructor(private readonly client: PompeClient) {
    const text = new TextEncoder();
    let i = 0;
    const loop = async (): Promise<void> => {
      while (this.running) {
        const batch = Array.from({ length: 100 }, () => client.submit(encodeKvCommand(KvOp.Put, text.encode(`k${i % 1000}`), text.encode(`v${i++}`))));
        const results = await Promise.allSettled(batch);
        this.executed += results.filter((r) => r.status === 'fulfilled').length;
      }
    };
    this.done = Promise.all([loop(), loop()]).then(() => undefined);
  }

  static async start(): Promise<Load> {
    return new Load(await PompeClient.connect({ config: cluster.config, timeoutMs: 20_000 }));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
    await this.client.close();
  }
}

const figure = async (page: Page, replica: number, field: string): Promise<string> =>
  page.$eval(`[data-replica="${replica}"] [data-field="${field}"]`, (el) => el.textContent ?? '');
const numberOf = (text: string): number => Number(text.replace(/[^0-9.]/g, ''));

async function ready(i: number): Promise<{ status: number; body: { ok: boolean; reason: string } }> {
  const r = cluster.config.replicas[i]!;
  const res = await fetch(`http://${r.host}:${r.httpPort}/ready`);
  return { status: res.status, body: (await res.json()) as { ok: boolean; reason: string } };
}

describe.skipIf(chromium === null)('dashboard and browser example in headless Chromium', () => {
  beforeAll(async () => {
    cluster = await TestCluster.create(4, ['--delta-us', '25000']);
    await cluster.startAll();
    browser = await launchBrowser(chromium!);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.destroy();
  });

  const reportOnFailure = (): void => onTestFailed(async () => console.error(await cluster.tails()));

  it('a replica page shows its figures change while load runs, and fits a phone', async () => {
    reportOnFailure();
    const page = await browser.browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    const r0 = cluster.config.replicas[0]!;
    await page.goto(`http://${r0.host}:${r0.httpPort}/`);
    await page.waitForSelector('[data-replica="0"] [data-field="view"]', { timeout: 10_000 });
    expect(await figure(page, 0, 'ready')).toBe('ready');
    const executedBefore = numberOf(await figure(page, 0, 'executedCommands'));
    const heightBefore = numberOf(await figure(page, 0, 'committedHeight'));

    const load = await Load.start();
    try {
      // The page updates itself (server-sent events): wait for it to show the load.
      await page.waitForFunction(
        (before: number) => {
          const { document } = globalThis as unknown as PageWindow;
          const read = (f: string): string => document.querySelector(`[data-replica="0"] [data-field="${f}"]`)?.textContent ?? '';
          const executed = Number(read('executedCommands').replace(/[^0-9]/g, ''));
          const rate = Number(read('executedCommandsPerSecond').replace(/[^0-9.]/g, ''));
          return executed >= before + 1000 && rate > 0 && /^[0-9.]+ \//.test(read('stamp_to_execute'));
        },
        { timeout: 30_000, polling: 250 },
        executedBefore,
      );
      expect(numberOf(await figure(page, 0, 'committedHeight'))).toBeGreaterThan(heightBefore);
      expect(await figure(page, 0, 'peers')).toBe('1 up2 up3 up');
      expect(numberOf(await figure(page, 0, 'view'))).toBeGreaterThan(0);
      const wide = await artifactPath('dashboard-replica.png');
      await page.screenshot({ path: wide, fullPage: true });
      console.log(`screenshot: ${wide}`);

      await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2 });
      await new Promise((r) => setTimeout(r, 1_200));
      const overflow = await page.evaluate(() => {
        const w = globalThis as unknown as PageWindow;
        return w.document.documentElement.scrollWidth - w.innerWidth;
      });
      expect(overflow).toBeLessThanOrEqual(0);
      const phone = await artifactPath('dashboard-replica-phone.png');
      await page.screenshot({ path: phone, fullPage: true });
      console.log(`screenshot: ${phone}`);
    } finally {
      await load.stop();
      await page.close();
    }
    expect(load.executed).toBeGreaterThan(1000);
  }, 90_000);

  it('`pompe dashboard` shows the cluster; with f+1 replicas stopped /ready is 503 with the reason, then 200 again', async () => {
    reportOnFailure();
    const dashboard: ChildProcess = spawn(process.execPath, [CLI, 'dashboard', '--conf', cluster.dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const page = await browser.browser.newPage();
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        dashboard.stdout!.on('data', (d: Buffer) => {
          out += String(d);
          const m = /at (http:\/\/\S+)/.exec(out);
          if (m !== null) resolve(m[1]!);
        });
        dashboard.once('exit', (code) => reject(new Error(`pompe dashboard exited with ${code}: ${out}`)));
      });
      await page.setViewport({ width: 1400, height: 1000 });
      await page.goto(url);
      await page.waitForFunction(() => (globalThis as unknown as PageWindow).document.querySelectorAll('[data-replica] [data-field="ready"]').length === 4, {
        timeout: 10_000,
      });
      for (let i = 0; i < 4; i++) expect(await figure(page, i, 'ready')).toBe('ready');
      for (let i = 0; i < 4; i++) expect((await ready(i)).status).toBe(200);
      const all = await artifactPath('dashboard-cluster.png');
      await page.screenshot({ path: all, fullPage: true });
      console.log(`screenshot: ${all}`);

      // f + 1 = 2 replicas stopped: the two left cannot form a quorum and say why.
      await cluster.kill(2);
      await cluster.kill(3);
      const notReady = await waitFor('replica 0 to be not ready', async () => {
        const r = await ready(0);
        return r.status === 503 ? r : undefined;
      }, 15_000, 200);
      expect(notReady.body.reason).toMatch(/connected to 1 of 3 peers; 2 needed/);
      await page.waitForFunction(
        () => {
          const { document } = globalThis as unknown as PageWindow;
          return (
            document.querySelector('[data-replica="3"] [data-field="ready"]')?.textContent === 'unreachable' &&
            document.querySelector('[data-replica="0"] [data-field="ready"]')?.textContent === 'not ready'
          );
        },
        { timeout: 15_000, polling: 250 },
      );
      expect(await figure(page, 0, 'readyReason')).toMatch(/connected to 1 of 3 peers/);
      const down = await artifactPath('dashboard-cluster-down.png');
      await page.screenshot({ path: down, fullPage: true });
      console.log(`screenshot: ${down}`);

      cluster.start(2);
      cluster.start(3);
      await cluster.waitUp(2);
      await cluster.waitUp(3);
      for (let i = 0; i < 4; i++) await waitFor(`replica ${i} to be ready again`, async () => ((await ready(i)).status === 200 ? true : undefined), 20_000, 200);
    } finally {
      await page.close();
      dashboard.kill('SIGTERM');
    }
  }, 90_000);

  it('the browser example submits commands from the page and shows where they executed', async () => {
    reportOnFailure();
    let example: BrowserExample | null = null;
    const page = await browser.browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    try {
      example = await serveBrowserExample(cluster.dir);
      await page.goto(example.url);
      await page.waitForFunction(() => (globalThis as unknown as PageWindow).document.getElementById('submit')?.disabled === false, { timeout: 20_000 });
      for (const entry of ['alice pays bob 5', 'bob pays carol 2']) {
        await page.$eval('#entry', (el, value) => ((el as unknown as PageElement).value = value), entry);
        await page.click('#submit');
      }
      await page.waitForFunction(() => (globalThis as unknown as PageWindow).document.querySelectorAll('li[data-status="executed"]').length === 2, {
        timeout: 30_000,
        polling: 200,
      });
      const positions = await page.$$eval('li[data-position]', (els) => els.map((e) => Number((e as unknown as PageElement).dataset['position'])));
      expect(positions).toHaveLength(2);
      expect(positions.every((p) => Number.isInteger(p) && p >= 0)).toBe(true);
      const shot = await artifactPath('browser-example.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`screenshot: ${shot}`);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      await example?.close();
    }
  }, 60_000);
});
