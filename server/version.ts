/**
 * This package's name and version, from its package.json (found by walking up from this module:
 * it sits one level deeper in dist/ than in the sources). Read once, for the info metric and
 * /status.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'pompe-ts';
/** package.json is at most this many directories up (dist/server/ → root). */
const MAX_LEVELS_UP = 4;

let cached: string | null = null;

/** The version in package.json, or 'unknown' when it cannot be read (a copied dist/ alone). */
export function packageVersion(): string {
  if (cached !== null) return cached;
  cached = 'unknown';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i <= MAX_LEVELS_UP; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    } catch {
      // not here: one level up
    }
  }
  return cached;
}
