/**
 * The client library for Node (`pompe-ts/client`): PompeClient (pompeClient.ts) with Node's
 * defaults — node:crypto, the `ws` transport, and `confDir` to read cluster.json from a directory —
 * loaded on the first connect() that needs them. In a browser use `pompe-ts/browser` instead.
 */
import { setPlatformDefaults } from './pompeClient.js';

export * from './pompeClient.js';

setPlatformDefaults(async () => {
  const node = await import('./nodeDefaults.js');
  return { crypto: node.nodeCrypto, transport: node.wsTransport, loadClusterConfig: node.loadClusterConfig };
});
