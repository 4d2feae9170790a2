/**
 * Whether a module is the script Node was asked to run (`node dist/x.js`, also through an npm bin
 * symlink), not a module something imported: scripts that are also libraries act only then.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Call as `isEntryPoint(import.meta.url)`. */
export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return moduleUrl === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}
