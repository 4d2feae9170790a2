/**
 * Test support for the store tests: temporary directories, child processes that hold or write a
 * database, blocks and safety states. Digests here are SHA-256 of the encoded block, which the
 * store never checks; they only need to be distinct.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bitmapSet, newBitmap } from '../../common/bitmap.js';
import { encodeBlock } from '../../common/codec.js';
import type { Digest, Height, ReplicaId, View } from '../../common/ids.js';
import type { Block, QuorumCert, TimeoutCert } from '../../common/messages.js';
import type { SafetyState } from '../../consensus/types.js';

export const TEST_REPLICAS = 4;

/** A temporary directory; `cleanup` removes it and everything below it. */
export async function tempDir(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `pompe-${prefix}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

const filled = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (seed * 31 + i * 7) & 0xff);

export const testDigest = (seed: number): Digest => filled(32, seed) as Digest;

export function testQc(view: number, block: Digest, signerIds: readonly number[] = [0, 1, 2]): QuorumCert {
  const signers = newBitmap(TEST_REPLICAS);
  for (const id of signerIds) bitmapSet(signers, id);
  return { view: view as View, block, signers, sigs: signerIds.map((id) => filled(64, view * 10 + id)) };
}

export function testTc(view: number): TimeoutCert {
  const signers = newBitmap(TEST_REPLICAS);
  for (const id of [0, 2, 3]) bitmapSet(signers, id);
  return { view: view as View, signers, highQcViews: [view - 1, view - 2, view - 1] as View[], sigs: [0, 2, 3].map((id) => filled(64, 100 + id)) };
}

export function testSafety(view: number, withTc = true): SafetyState {
  return {
    lastVotedView: view as View,
    lockedView: Math.max(0, view - 2) as View,
    highQc: testQc(Math.max(0, view - 1), testDigest(view)),
    lastTc: withTc ? testTc(view) : null,
  };
}

export function digestOf(block: Block): Digest {
  return new Uint8Array(createHash('sha256').update(encodeBlock(block)).digest()) as Digest;
}

export function testBlock(parent: Digest, height: number, view: number, payloadBytes = 16): Block {
  return {
    parent,
    view: view as View,
    height: height as Height,
    proposer: (view % TEST_REPLICAS) as ReplicaId,
    justify: testQc(Math.max(0, view - 1), parent),
    payload: filled(payloadBytes, view),
  };
}

export interface ChainLink {
  readonly block: Block;
  readonly digest: Digest;
}

/** A genesis-like block at height 0 and `length` blocks on top of it (index = height). */
export function testChain(length: number, viewOffset = 0, payloadBytes = 16): ChainLink[] {
  const genesis = testBlock(new Uint8Array(32) as Digest, 0, 0, 0);
  const chain: ChainLink[] = [{ block: genesis, digest: digestOf(genesis) }];
  for (let h = 1; h <= length; h++) {
    const block = testBlock(chain[h - 1]!.digest, h, h + viewOffset, payloadBytes);
    chain.push({ block, digest: digestOf(block) });
  }
  return chain;
}

/** The absolute path of classic-level, for child scripts written outside the repository. */
export const CLASSIC_LEVEL_PATH = createRequire(import.meta.url).resolve('classic-level');

export interface ChildScript {
  readonly child: ChildProcess;
  /** Everything the child printed so far. */
  readonly output: () => string;
  /** SIGKILLs the child (if still running) and waits for it to exit; removes the script. */
  readonly kill: () => Promise<void>;
}

/** Writes `source` (an ESM script; `ClassicLevel` is in scope) to a temp dir, runs it with this
 *  node, and resolves once it prints `ready` on stdout. */
export async function startChild(source: string, ready: string, timeoutMs = 20_000): Promise<ChildScript> {
  const dir = await tempDir('child');
  const script = join(dir.path, 'child.mjs');
  const prelude = `import { createRequire } from 'node:module';\nconst { ClassicLevel } = createRequire(import.meta.url)(${JSON.stringify(CLASSIC_LEVEL_PATH)});\n`;
  await writeFile(script, prelude + source);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += String(d)));
  child.stderr.on('data', (d: Buffer) => (out += String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await dir.cleanup();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not print ${ready} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
      const check = (): void => {
        if (out.includes(ready)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', check);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`child exited before printing ${ready}:\n${out}`));
      });
    });
  } catch (error) {
    await kill();
    throw error;
  }
  return { child, output: () => out, kill };
}
