/**
 * Crypto micro-benchmark: Ed25519 signs/s and verifies/s for both backends, and SHA-256 MB/s and
 * small-message hashes/s. A script, not a test: it prints figures and asserts nothing.
 *
 *   npm run build && node dist/scripts/bench-crypto.js [secondsPerFigure]
 */
import { performance } from 'node:perf_hooks';
import { nobleCrypto, nodeCrypto, type CryptoBackend } from '../common/crypto/index.js';

const DEFAULT_SECONDS_PER_FIGURE = 1;
/** The size of a typical signed statement (domain tag, cluster id, digest, fields). */
const SIGNED_MESSAGE_BYTES = 96;
const LARGE_HASH_BYTES = 1024 * 1024;
/** A batch of a few 32-byte commands with tags: the common small hash on the hot path. */
const SMALL_HASH_BYTES = 256;
/** Distinct inputs cycled through, so nothing is measured on one cached value. */
const DISTINCT_INPUTS = 64;

/** Runs `op` in rounds until `seconds` have passed; returns operations per second. */
function rate(seconds: number, op: (i: number) => void): number {
  for (let i = 0; i < 20; i++) op(i); // warm-up: let the JIT compile the path
  let done = 0;
  let round = 1;
  const start = performance.now();
  let elapsedMs = 0;
  while (elapsedMs < seconds * 1000) {
    for (let i = 0; i < round; i++) op(done + i);
    done += round;
    round = Math.min(round * 2, 4096);
    elapsedMs = performance.now() - start;
  }
  return (done * 1000) / elapsedMs;
}

function inputs(bytes: number): Uint8Array[] {
  return Array.from({ length: DISTINCT_INPUTS }, (_, i) => new Uint8Array(bytes).fill(i + 1));
}

function bench(backend: CryptoBackend, seconds: number): Record<string, string> {
  const signer = backend.signer(new Uint8Array(32).fill(7));
  const key = backend.parsePublicKey(signer.publicKey);
  if (key === null) throw new Error('benchmark key did not parse');
  const messages = inputs(SIGNED_MESSAGE_BYTES);
  const signatures = messages.map((m) => signer.sign(m));
  const signs = rate(seconds, (i) => signer.sign(messages[i % DISTINCT_INPUTS]!));
  let rejected = 0;
  const verifies = rate(seconds, (i) => {
    const j = i % DISTINCT_INPUTS;
    if (!backend.verify(key, messages[j]!, signatures[j]!)) rejected++;
  });
  if (rejected > 0) throw new Error(`${backend.name}: ${rejected} good signatures failed to verify`);
  const large = inputs(LARGE_HASH_BYTES).slice(0, 4);
  const largeHashes = rate(seconds, (i) => backend.sha256(large[i % large.length]!));
  const small = inputs(SMALL_HASH_BYTES);
  const smallHashes = rate(seconds, (i) => backend.sha256(small[i % DISTINCT_INPUTS]!));
  return {
    backend: backend.name,
    'signs/s': Math.round(signs).toLocaleString('en-US'),
    'verifies/s': Math.round(verifies).toLocaleString('en-US'),
    'sha256 MB/s (1 MiB)': ((largeHashes * LARGE_HASH_BYTES) / 1e6).toFixed(0),
    [`sha256 hashes/s (${SMALL_HASH_BYTES} B)`]: Math.round(smallHashes).toLocaleString('en-US'),
  };
}

function main(): void {
  const arg = process.argv[2];
  const seconds = arg === undefined ? DEFAULT_SECONDS_PER_FIGURE : Number(arg);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    console.error(`usage: bench-crypto [secondsPerFigure > 0], got ${arg}`);
    process.exit(2);
  }
  console.log(`crypto micro-benchmark: ${seconds} s per figure, one core, Node ${process.version} (OpenSSL ${process.versions.openssl})`);
  console.log(`signed messages of ${SIGNED_MESSAGE_BYTES} bytes`);
  console.table([bench(nodeCrypto, seconds), bench(nobleCrypto, seconds)]);
}

main();
