/**
 * The client library for browsers (`pompe-ts/browser`): the same PompeClient as `pompe-ts/client`,
 * whose connect() fills in the noble crypto backend (pure JS) and the page's WebSocket. Nothing
 * this module imports uses a Node built-in (a test bundles it with esbuild for the browser
 * platform to keep it so), so any bundler takes it as it is.
 *
 * ```ts
 * import { PompeClient, clusterConfigFromText } from 'pompe-ts/browser';
 *
 * const config = clusterConfigFromText(await (await fetch('/cluster.json')).text());
 * const client = await PompeClient.connect({ config });
 * const r = await client.submit(new TextEncoder().encode('hello'));
 * ```
 *
 * cluster.json holds only public keys and addresses: serve it, never a replica's secret file.
 * Replicas' client ports must be reachable from the browser (ws://; use wss:// through a proxy).
 */
import type { ClusterConfig } from '../common/config.js';
import { nobleCrypto } from '../common/crypto/noble.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { browserWebSocketTransport, type BrowserWebSocketConstructor } from './browserTransport.js';
import { clusterConfigFromText as parseWith } from './configText.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';
import { setPlatformDefaults } from './pompeClient.js';

export * from './pompeClient.js';
export { browserWebSocketTransport, type BrowserWebSocket, type BrowserWebSocketConstructor } from './browserTransport.js';
export { nobleCrypto } from '../common/crypto/noble.js';
export type { ClusterConfig } from '../common/config.js';

/** A cluster.json text to a checked config (BAD_CONFIG naming `source` when it is not one). */
export function clusterConfigFromText(text: string, source = 'cluster.json', crypto: CryptoBackend = nobleCrypto): ClusterConfig {
  return parseWith(text, crypto, source);
}

setPlatformDefaults(async () => {
  const WebSocketCtor = (globalThis as { WebSocket?: BrowserWebSocketConstructor }).WebSocket;
  if (WebSocketCtor === undefined) throw new PompeClientError(PompeClientErrorCode.BadConfig, 'no global WebSocket here: pass `transport`');
  return { crypto: nobleCrypto, transport: browserWebSocketTransport(WebSocketCtor) };
});
