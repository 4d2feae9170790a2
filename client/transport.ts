/**
 * The one seam between the client library and a WebSocket implementation, so the library runs in
 * Node (wsTransport.ts, on the `ws` package) and in a browser (browserTransport.ts, on the global
 * WebSocket) with the same code above it. It is deliberately tiny: open a binary socket to a URL,
 * get its frames, send frames, see how much is queued, close it. Reconnecting is the caller's job
 * (links.ts), so an implementation never retries on its own.
 */

export interface SocketHandlers {
  onOpen(): void;
  /** One binary frame. The bytes are the caller's from now on (not reused by the transport). */
  onMessage(frame: Uint8Array): void;
  /** Called once, after an open socket closed or a connection attempt failed. */
  onClose(reason: string): void;
}

export interface ClientSocket {
  /** Sends one binary frame; only called between onOpen and onClose. */
  send(frame: Uint8Array): void;
  /** Bytes accepted by send() but not yet handed to the network (WebSocket.bufferedAmount). */
  readonly bufferedAmount: number;
  /** Closes at once, without waiting for the peer (no timer or handle may outlive it).
   *  onClose is not called after close(). */
  close(): void;
}

/** How to check a wss:// server: against these PEM certificates (the cluster's CA, from
 *  cluster.json), or the platform's trusted roots when absent. A browser always uses its own. */
export interface SocketTls {
  readonly ca: string | null;
}

/** Opens a socket to `url` (ws:// or wss://) and reports through `handlers`. Never throws for a
 *  connection failure: that is an onClose. */
export type SocketFactory = (url: string, handlers: SocketHandlers, tls?: SocketTls) => ClientSocket;

/** The client-port URL of a replica; IPv6 literals need brackets. */
export function replicaUrl(host: string, port: number, secure = false): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${secure ? 'wss' : 'ws'}://${h}:${port}/`;
}
