/**
 * The native uWebSockets.js server behind the listener (serverBackend.ts). One uWS App per port:
 * an App cannot tell which of its listen sockets accepted a connection except through the client's
 * Host header, and the port decides whether a connection must authenticate as a replica.
 * With TLS, an SSLApp reads the certificate and key files itself (they were checked at load).
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import { ListenError, type AcceptedSocket, type ListeningServer, type ServerBackend, type ServerHandlers, type ServerSettings } from './serverBackend.js';
import type { UwsModule } from './uws.js';

/** uWS's close reason when it cuts a connection for a frame above maxPayloadLength. */
const UWS_TOO_BIG_REASON = 'Received too big message';
/** Close code uWS reports for a connection it cut without a close frame. */
const ABNORMAL_CLOSURE = 1006;

interface UserData<C> {
  readonly conn: C;
  socket: UwsSocket | null;
}

class UwsSocket implements AcceptedSocket {
  closed = false;

  constructor(private readonly ws: WebSocket<unknown>) {}

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    // 1: written, 0: buffered by uWS (drains later), 2: dropped for its maxBackpressure.
    return this.ws.send(frame, true, false) !== 2;
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  end(code: number, reason: string): void {
    if (!this.closed) this.ws.end(code, reason);
  }

  destroy(): void {
    if (!this.closed) this.ws.close();
  }
}

function listenOn(uws: UwsModule, app: TemplatedApp, host: string, port: number): us_listen_socket | false {
  let result: us_listen_socket | false = false;
  // uWS binds with SO_REUSEPORT unless told otherwise, so a second process on the same port would
  // silently share our connections; the exclusive flag makes a taken port fail instead. The typed
  // signature lacks the (host, port, options, cb) overload the native module has.
  const listen = app.listen as unknown as (h: string, p: number, o: number, cb: (s: us_listen_socket | false) => void) => void;
  const exclusive = (uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
  listen.call(app, host, port, exclusive, (socket) => {
    result = socket;
  });
  return result;
}

export function uwsBackend(uws: UwsModule): ServerBackend {
  return {
    name: 'uws',
    listen<C>(settings: ServerSettings, handlers: ServerHandlers<C>): Promise<ListeningServer> {
      const app = settings.tls === null ? uws.App() : uws.SSLApp({ cert_file_name: settings.tls.certFile, key_file_name: settings.tls.keyFile });
      app.ws<UserData<C>>('/*', {
        maxPayloadLength: settings.maxPayloadBytes,
        // We only send below the high-water mark, so uWS never needs to drop; this bound is a backstop.
        maxBackpressure: settings.highWaterBytes + settings.maxPayloadBytes,
        closeOnBackpressureLimit: 0,
        idleTimeout: settings.idleTimeoutS,
        sendPingsAutomatically: true,
        compression: uws.DISABLED,
        upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
          const address = Buffer.from(res.getRemoteAddressAsText()).toString();
          const conn = handlers.accept(address);
          if (conn === null) {
            res.writeStatus('429 Too Many Requests').end('too many connections from this address');
            return;
          }
          const userData: UserData<C> = { conn, socket: null };
          res.upgrade(userData, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
        },
        open: (ws) => {
          const data = ws.getUserData();
          data.socket = new UwsSocket(ws as WebSocket<unknown>);
          handlers.open(data.conn, data.socket);
        },
        message: (ws, message, isBinary) => {
          handlers.message(ws.getUserData().conn, new Uint8Array(message), isBinary, true);
        },
        drain: (ws) => {
          handlers.drain(ws.getUserData().conn);
        },
        close: (ws, code, message) => {
          const data = ws.getUserData();
          if (data.socket !== null) data.socket.closed = true;
          const reason = Buffer.from(message).toString();
          handlers.close(data.conn, code, reason, code === ABNORMAL_CLOSURE && reason === UWS_TOO_BIG_REASON);
        },
      });
      app.any('/*', (res) => {
        res.writeStatus('426 Upgrade Required').end('this port speaks WebSocket only');
      });
      const socket = listenOn(uws, app, settings.host, settings.port);
      if (socket === false) return Promise.reject(new ListenError(settings.host, settings.port, 'port in use, or address not available'));
      const port = uws.us_socket_local_port(socket as unknown as Parameters<UwsModule['us_socket_local_port']>[0]);
      let open = true;
      return Promise.resolve({
        port,
        close: () => {
          if (open) uws.us_listen_socket_close(socket);
          open = false;
        },
      });
    },
  };
}
