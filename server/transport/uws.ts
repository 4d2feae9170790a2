/**
 * Loading uWebSockets.js, and refusing to run on its silent fallback.
 *
 * The package's entry point (src/uws.js) requires the native binary built for this platform, CPU
 * and Node ABI, and when that fails (or when UWS_USE_FALLBACK is set) it prints a warning and
 * returns a pure-JS stand-in built on `ws` instead. That stand-in is far slower and incomplete (no
 * custom upgrade handler, no per-socket user data, no drain event), so a replica that ended up on
 * it would miss every performance target, or fail at its first connection, with only a console
 * line as a clue. So we look at what was loaded: the native module's functions are native code
 * (`Function.prototype.toString` gives "[native code]"), the fallback's are JS source.
 *
 * When the fallback is explicitly allowed (POMPE_ALLOW_UWS_FALLBACK=1 or allowFallback), the
 * transport logs a loud warning and serves its ports with `ws`'s own server instead (wsServer.ts),
 * since the stand-in cannot run our listener.
 *
 * This file imports nothing but Node built-ins and types, so a test can load it in a child process.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type * as UwsTypes from 'uWebSockets.js';

export type UwsModule = typeof UwsTypes;

/** Set to 1 to let a replica run when the native binary did not load. */
export const ALLOW_UWS_FALLBACK_ENV = 'POMPE_ALLOW_UWS_FALLBACK';
/** uWebSockets.js's own switch that forces its fallback (used by the tests). */
export const UWS_FORCE_FALLBACK_ENV = 'UWS_USE_FALLBACK';

export interface LoadedUws {
  readonly uws: UwsModule;
  /** True when the native binary loaded; false when the package returned its JS fallback. */
  readonly native: boolean;
  /** Why the fallback was loaded, when it was. */
  readonly fallbackReason?: string;
}

export interface LoadUwsOptions {
  /** Run on the fallback (with a loud warning) instead of refusing to start. */
  readonly allowFallback?: boolean;
  readonly logger?: Logger;
}

/** The native binary did not load and the fallback was not allowed. */
export class UwsFallbackError extends Error {
  override readonly name = 'UwsFallbackError';
}

const require = createRequire(import.meta.url);
const PACKAGE = 'uWebSockets.js';

/** True if `mod` is the native addon: its entry points are native functions, not JS source. */
export function isNativeUws(mod: unknown): boolean {
  if (typeof mod !== 'object' || mod === null) return false;
  const { App, us_listen_socket_close: closeListen } = mod as Partial<UwsModule>;
  const native = (f: unknown): boolean => typeof f === 'function' && Function.prototype.toString.call(f).includes('[native code]');
  return native(App) && native(closeListen);
}

/** The file the package tries first; requiring it again reproduces the error the package swallowed. */
export function uwsBinaryPath(): string {
  const dir = dirname(require.resolve(`${PACKAGE}/package.json`));
  return join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
}

function fallbackReason(): string {
  const forced = process.env[UWS_FORCE_FALLBACK_ENV];
  if (forced !== undefined && /^(1|true)$/i.test(forced)) return `${UWS_FORCE_FALLBACK_ENV}=${forced} is set`;
  const path = uwsBinaryPath();
  try {
    require(path);
    return `the package returned its fallback although ${path} loads`;
  } catch (e) {
    const first = String(e instanceof Error ? e.message : e).split('\n')[0];
    return `${path}: ${first}`;
  }
}

export function fallbackAllowedByEnv(): boolean {
  return process.env[ALLOW_UWS_FALLBACK_ENV] === '1';
}

/**
 * Requires uWebSockets.js and checks that its native binary is what loaded. Throws
 * UwsFallbackError if the fallback was loaded and neither `allowFallback` nor
 * POMPE_ALLOW_UWS_FALLBACK=1 allows it; otherwise warns loudly and reports `native: false`.
 */
export function loadUws(options: LoadUwsOptions = {}): LoadedUws {
  const uws = require(PACKAGE) as UwsModule;
  if (isNativeUws(uws)) return { uws, native: true };
  const reason = fallbackReason();
  if (options.allowFallback !== true && !fallbackAllowedByEnv()) {
    throw new UwsFallbackError(
      `uWebSockets.js native binary did not load (${reason}); refusing to start: set ${ALLOW_UWS_FALLBACK_ENV}=1 to run on the slow fallback`,
    );
  }
  const warning =
    `uWebSockets.js native binary did not load (${reason}); running on the SLOW fallback because it was explicitly allowed. ` +
    'Throughput and latency figures from this process are not representative.';
  if (options.logger !== undefined) options.logger.warn({ uwsNative: false, reason }, warning);
  else process.stderr.write(`WARNING: ${warning}\n`);
  return { uws, native: false, fallbackReason: reason };
}
