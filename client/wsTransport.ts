/**
 * The Node transport: the `ws` package. Frames arrive as Buffers, handed on as plain Uint8Array
 * views (no copy: ws allocates each message afresh). close() terminates the TCP socket at once:
 * ws.close() would wait up to 30 s for the peer's closing handshake, with a timer that keeps the
 * process alive.
 */
import WebSocket from 'ws';
import { MAX_FRAME_BYTES } from '../common/limits.js';
import type { ClientSocket, SocketFactory, SocketHandlers, SocketTls } from './transport.js';

function asBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export const wsTransport: SocketFactory = (url: string, handlers: SocketHandlers, tls?: SocketTls): ClientSocket => {
  // Replies are small and frequent: compression would cost CPU on both ends for nothing.
  // Client frames must carry a masking key (RFC 6455), but masking only protects proxies from
  // frames crafted by untrusted scripts in a browser; this Node client sends batches of tens of KB
  // to every replica, and an all-zero key lets ws skip the XOR pass (~7% of its send cost).
  // Over wss://, ws verifies the replica's certificate against `ca` and its host name or address.
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    maxPayload: MAX_FRAME_BYTES,
    generateMask: (mask) => void mask.fill(0),
    ...(tls === undefined || tls.ca === null ? {} : { ca: tls.ca }),
  });
  ws.binaryType = 'nodebuffer';
  let closedByUs = false;
  let reported = false;
  const report = (reason: string): void => {
    if (closedByUs || reported) return;
    reported = true;
    handlers.onClose(reason);
  };
  ws.on('open', () => {
    // Small frames (acks, timestamps) must not wait for Nagle.
    (ws as unknown as { _socket?: { setNoDelay?: (v: boolean) => void } })._socket?.setNoDelay?.(true);
    if (!closedByUs) handlers.onOpen();
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary && !closedByUs) handlers.onMessage(asBytes(data));
  });
  // 'error' is always followed by 'close'; without a listener it would crash the process.
  let lastError = '';
  ws.on('error', (error: Error) => {
    lastError = error.message;
  });
  ws.on('close', (code: number) => report(lastError !== '' ? lastError : `closed (${code})`));
  return {
    send(frame: Uint8Array): void {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: true });
    },
    get bufferedAmount(): number {
      return ws.bufferedAmount;
    },
    close(): void {
      closedByUs = true;
      ws.terminate();
    },
  };
};
