/**
 * Which native uWebSockets.js build loads on this Node and libc, if any.
 *
 * uWS ships one native binary per platform, CPU and Node ABI, and each build covers a few Node
 * lines only. Two builds are tried, in this order:
 *
 *   uWebSockets.js               (the @trufflesuite/uws-js-unofficial alias) Node 16/18/20, glibc ≥ 2.27
 *   @btc-vision/uwebsockets.js   (an optional dependency) Node 20/22/24/25, glibc ≥ 2.38
 *
 * Their entry points are bypassed: the first one prints to the console and returns a slow,
 * incomplete JS stand-in when its binary does not load, and neither says why in a form a replica
 * can report. So the binary file is required directly, and a failure keeps its reason (wrong ABI,
 * libc too old, package not installed) for the warning or the error that names it.
 *
 * This file imports nothing but Node built-ins and types.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UwsTypes from 'uWebSockets.js';

export type UwsModule = typeof UwsTypes;

interface UwsBuild {
  /** The npm package name (as installed under node_modules). */
  readonly packageName: string;
  /** The binary for this platform, CPU and Node ABI, given the file the package resolves to. */
  readonly binaryPath: (entryFile: string, file: string) => string;
}

/** The file name every uWS build uses for its binaries. */
const binaryFile = (): string => `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;

export const UWS_BUILDS: readonly UwsBuild[] = [
  // Entry point src/uws.js; binaries in binaries/.
  { packageName: 'uWebSockets.js', binaryPath: (entry, file) => join(dirname(entry), '..', 'binaries', file) },
  // Entry point uws.js beside the binaries.
  { packageName: '@btc-vision/uwebsockets.js', binaryPath: (entry, file) => join(dirname(entry), file) },
];

export type UwsProbe =
  | { readonly ok: true; readonly uws: UwsModule; readonly packageName: string; readonly binary: string }
  | { readonly ok: false; readonly reasons: readonly string[] };

const require = createRequire(import.meta.url);

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).split('\n')[0]!;
}

function isUwsModule(mod: unknown): mod is UwsModule {
  const m = mod as Partial<UwsModule> | null;
  return typeof m === 'object' && m !== null && typeof m.App === 'function' && typeof m.us_listen_socket_close === 'function';
}

/** Tries each build in turn; the first whose binary loads wins. `builds` is for tests. */
export function probeUws(builds: readonly UwsBuild[] = UWS_BUILDS): UwsProbe {
  const reasons: string[] = [];
  for (const build of builds) {
    let entry: string;
    try {
      entry = require.resolve(build.packageName);
    } catch {
      reasons.push(`${build.packageName}: not installed`);
      continue;
    }
    const binary = build.binaryPath(entry, binaryFile());
    if (!existsSync(binary)) {
      reasons.push(`${build.packageName}: no binary for ${process.platform}-${process.arch} Node ABI ${process.versions.modules} (Node ${process.versions.node})`);
      continue;
    }
    try {
      const mod: unknown = require(binary);
      if (isUwsModule(mod)) return { ok: true, uws: mod, packageName: build.packageName, binary };
      reasons.push(`${build.packageName}: ${binary} is not a uWS module`);
    } catch (error) {
      reasons.push(`${build.packageName}: ${firstLine(error)}`);
    }
  }
  return { ok: false, reasons };
}

let cached: UwsProbe | null = null;

/** probeUws() with the default builds, once per process (a native module loads once anyway). */
export function loadedUws(): UwsProbe {
  cached ??= probeUws();
  return cached;
}
