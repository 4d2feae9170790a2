/**
 * A cluster.json text (from a file, a fetch, a form) to a checked ClusterConfig, or the client's
 * typed BAD_CONFIG error naming where the text came from.
 */
import { parseClusterConfig, type ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';

export function clusterConfigFromText(text: string, crypto: CryptoBackend, source = 'cluster.json'): ClusterConfig {
  const parsed = parseClusterConfig(text, crypto);
  if (!parsed.ok) throw new PompeClientError(PompeClientErrorCode.BadConfig, `${source}: ${parsed.error.message}`);
  return parsed.value;
}
