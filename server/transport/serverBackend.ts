/**
 * What the listener needs from a WebSocket server library: accept or refuse a connection by its
 * address before upgrading it, receive binary frames, send with backpressure, close; over TLS
 * (wss://) when given a certificate. Two implementations: native uWebSockets.js (uwsServer.ts,
 * the fast one) and `ws` on node:http(s) (wsServer.ts, where no uWS build loads: backendChoice.ts).
 */

/** One accepted WebSocket connection. Every method is a no-op once the connection has closed. */
export interface AcceptedSocket {
  /**
   * Hands one binary frame to the library. True if it took the frame (written, or buffered to be
   * written); false if it refused it for backpressure: keep it and retry after `drain`.
   */
  send(frame: Uint8Array): boolean;
  /** Bytes the library holds for this connection, not yet written to the kernel. */
  bufferedBytes(): number;
  /** Graceful close (a close frame with code and reason). The close event may come synchronously. */
  end(code: number, reason: string): void;
  /** Immediate close, no close frame. */
  destroy(): void;
}

export interface ServerHandlers<C> {
  /** A connection from `remoteAddress` asks to upgrade: its state, or null to refuse it (HTTP 429). */
  accept(remoteAddress: string): C | null;
  open(conn: C, socket: AcceptedSocket): void;
  /**
   * One complete frame. When `borrowed`, `data` is valid only during this call (uWS reuses its
   * receive buffer): copy it before keeping anything that points into it.
   */
  message(conn: C, data: Uint8Array, isBinary: boolean, borrowed: boolean): void;
  /** The library's buffer for this connection has drained below the mark: send more. */
  drain(conn: C): void;
  /** The connection closed, for any reason. `tooLarge`: the library cut it for an oversized frame. */
  close(conn: C, code: number, reason: string, tooLarge: boolean): void;
}

/** This replica's TLS certificate and key, checked to match when the configuration was loaded. */
export interface ServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ServerSettings {
  readonly host: string;
  readonly port: number;
  /** Frames above this are refused by the library before they are buffered (connection dropped). */
  readonly maxPayloadBytes: number;
  /** The library's buffered bytes at which `drain` becomes meaningful (see AcceptedSocket.send). */
  readonly highWaterBytes: number;
  /** Close connections idle this long (the library pings idle sockets first). */
  readonly idleTimeoutS: number;
  /** Serve wss:// with this certificate; null: plain ws://. */
  readonly tls: ServerTls | null;
}

export interface ListeningServer {
  /** The port actually bound (useful when `port` was 0). */
  readonly port: number;
  /** Stops accepting connections. Open connections stay open: the listener closes them. */
  close(): void;
}

export interface ServerBackend {
  readonly name: 'uws' | 'ws';
  /** Rejects with ListenError if the address cannot be bound. */
  listen<C>(settings: ServerSettings, handlers: ServerHandlers<C>): Promise<ListeningServer>;
}

/** A port that could not be bound (in use, or not permitted). */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly host: string,
    readonly port: number,
    detail: string,
  ) {
    super(`cannot listen on ${host}:${port} (${detail})`);
  }
}
