/**
 * Which client key each client connection proved it holds (the transport checks the proof and
 * passes the key in; the simulator does the same), and the connections of each key. Executed
 * notices for a batch go only to connections of its collector key, so no one learns another
 * client's results or takes its notices (issue 11, finding 4). One identity per connection.
 */
import { assert } from '../common/assert.js';
import { clientAllowed, type ClusterConfig } from '../common/config.js';
import type { ClientIdentity } from './clientKeys.js';

/** Connections of one key that receive its notices. An honest client has one per replica; a few
 *  more cover reconnects whose old connection has not closed yet. The newest win: a client that
 *  redials is served on its new connection at once. */
export const MAX_CONNECTIONS_PER_CLIENT_KEY = 8;

/** Authenticated client connections at once: each is a socket the transport holds (bounded per
 *  address there); this bounds the table whatever the number of addresses. */
export const MAX_AUTHENTICATED_CONNECTIONS = 65_536;

export type Registration = 'ok' | 'notAllowed' | 'full';

export class ClientRegistry {
  private readonly byConn = new Map<number, ClientIdentity>();
  /** Per key (hex): its registered connections, oldest first. */
  private readonly byKey = new Map<string, number[]>();

  constructor(private readonly config: ClusterConfig) {}

  get size(): number {
    return this.byConn.size;
  }

  /** Records that `conn` proved it holds `identity`'s key. A connection authenticates once (the
   *  transport refuses a second hello), so a second call for it is a driver bug. */
  authenticate(conn: number, identity: ClientIdentity): Registration {
    assert(!this.byConn.has(conn), `client connection ${conn} authenticated twice`);
    if (!clientAllowed(this.config, identity.hex)) return 'notAllowed';
    if (this.byConn.size >= MAX_AUTHENTICATED_CONNECTIONS) return 'full';
    this.byConn.set(conn, identity);
    let conns = this.byKey.get(identity.hex);
    if (conns === undefined) this.byKey.set(identity.hex, (conns = []));
    conns.push(conn);
    // The oldest beyond the bound stop receiving notices (they stay authenticated for their own sends).
    if (conns.length > MAX_CONNECTIONS_PER_CLIENT_KEY) conns.shift();
    return 'ok';
  }

  closed(conn: number): void {
    const identity = this.byConn.get(conn);
    if (identity === undefined) return;
    this.byConn.delete(conn);
    const conns = this.byKey.get(identity.hex);
    if (conns === undefined) return;
    const at = conns.indexOf(conn);
    if (at >= 0) conns.splice(at, 1);
    if (conns.length === 0) this.byKey.delete(identity.hex);
  }

  identityOf(conn: number): ClientIdentity | undefined {
    return this.byConn.get(conn);
  }

  /** The connections that receive `keyHex`'s notices (none if it has none). */
  connectionsOf(keyHex: string): readonly number[] {
    return this.byKey.get(keyHex) ?? [];
  }
}
