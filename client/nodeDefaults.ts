/**
 * What connect() fills in under Node when the caller does not: node:crypto, the `ws` transport,
 * and reading cluster.json from a directory. Loaded lazily by client.ts (the Node entry); the
 * browser entry (browser.ts) never imports it.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { clusterConfigFromText } from './configText.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';

export { nodeCrypto } from '../common/crypto/node.js';
export { wsTransport } from './wsTransport.js';

/** The file a conf directory holds (written by `pompe gen-conf`). */
export const CLUSTER_CONFIG_FILE = 'cluster.json';

/** Reads `<confDir>/cluster.json` (or `confDir` itself when it is a file); BAD_CONFIG on failure. */
export async function loadClusterConfig(confDir: string, crypto: CryptoBackend): Promise<ClusterConfig> {
  let path = confDir;
  let text: string;
  try {
    if ((await stat(confDir)).isDirectory()) path = join(confDir, CLUSTER_CONFIG_FILE);
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PompeClientError(PompeClientErrorCode.BadConfig, `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return clusterConfigFromText(text, crypto, path);
}
