/**
 * The listener's server on `ws` + node:http (node:https with TLS): where no uWS build loads, or
 * when chosen (backendChoice.ts). Slower, same behaviour as uwsServer.ts, except that idle
 * connections are not pinged.
 */
import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ListenError, type AcceptedSocket, type ListeningServer, type ServerBackend, type ServerHandlers, type ServerSettings } from './serverBackend.js';

/** The error `ws` reports when it cuts a connection for a frame above maxPayload (the close code
 *  the listener then sees is whatever came back, often 1006, so the error is what tells). */
const MESSAGE_TOO_BIG_ERROR = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
/** A graceful close waits for the other side's close frame; one that is not reading never sends
 *  it, and its connection (and what it holds) would linger for ws's 30 s. */
const CLOSE_GRACE_MS = 1_000;

class WsSocket implements AcceptedSocket {
  closed = false;
  /** Set when a send left the buffer above the mark: the next write callback below it is a drain. */
  private wantDrain = false;
  private readonly onWritten: () => void;

  constructor(
    private readonly ws: WebSocket,
    private readonly highWaterBytes: number,
    onDrain: () => void,
  ) {
    this.onWritten = () => {
      if (this.wantDrain && !this.closed && this.ws.bufferedAmount < this.highWaterBytes) {
        this.wantDrain = false;
        onDrain();
      }
    };
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    this.ws.send(frame, { binary: true }, this.onWritten);
    if (this.ws.bufferedAmount >= this.highWaterBytes) this.wantDrain = true;
    return true;
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.ws.bufferedAmount;
  }

  end(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.close(code, reason);
    setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
  }

  destroy(): void {
    if (!this.closed) this.ws.terminate();
  }
}

function refuse(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export const wsBackend: ServerBackend = {
  name: 'ws',
  listen<C>(settings: ServerSettings, handlers: ServerHandlers<C>): Promise<ListeningServer> {
    const upgradeOnly: RequestListener = (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('this port speaks WebSocket only');
    };
    const tls = settings.tls;
    const http = tls === null ? createServer(upgradeOnly) : createTlsServer({ cert: tls.certPem, key: tls.keyPem }, upgradeOnly);
    const wss = new WebSocketServer({ noServer: true, maxPayload: settings.maxPayloadBytes, perMessageDeflate: false });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy()); // a reset during the upgrade is not our error
      const conn = handlers.accept(req.socket.remoteAddress ?? 'unknown');
      if (conn === null) {
        refuse(socket, '429 Too Many Requests');
        return;
      }
      // An upgrade `ws` rejects (bad headers) never opens: release the connection's slot anyway.
      let upgraded = false;
      socket.once('close', () => {
        if (!upgraded) handlers.close(conn, 1006, 'upgrade failed', false);
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        const wrapped = new WsSocket(ws, settings.highWaterBytes, () => handlers.drain(conn));
        ws.on('message', (data, isBinary) => handlers.message(conn, data as Buffer, isBinary, false));
        let tooLarge = false;
        // `ws` closes the connection after an error; close reports it.
        ws.on('error', (error: Error & { code?: string }) => {
          if (error.code === MESSAGE_TOO_BIG_ERROR) tooLarge = true;
        });
        ws.on('close', (code, reason) => {
          wrapped.closed = true;
          handlers.close(conn, code, reason.toString(), tooLarge);
        });
        handlers.open(conn, wrapped);
      });
    });
    return new Promise((resolve, reject) => {
      http.once('error', (e) => reject(new ListenError(settings.host, settings.port, e.message)));
      http.listen({ host: settings.host, port: settings.port, exclusive: true }, () => {
        const address = http.address();
        const port = typeof address === 'object' && address !== null ? address.port : settings.port;
        resolve({
          port,
          close: () => {
            http.close();
            http.closeAllConnections(); // HTTP keep-alive sockets; upgraded ones are closed by the listener
          },
        });
      });
    });
  },
};
