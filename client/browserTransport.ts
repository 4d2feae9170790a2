/**
 * The browser transport: the platform's WebSocket, passed in (this file names no global, so it
 * type-checks and bundles anywhere). `pompe-ts/browser` (browser.ts) uses it by default; pass it
 * yourself to wrap another WebSocket implementation:
 *
 * ```ts
 * import { PompeClient, browserWebSocketTransport } from 'pompe-ts/browser';
 * const client = await PompeClient.connect({ config, transport: browserWebSocketTransport(WebSocket) });
 * ```
 */
import type { ClientSocket, SocketFactory, SocketHandlers } from './transport.js';

/** The part of the DOM WebSocket this transport uses. */
export interface BrowserWebSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(): void;
}
export type BrowserWebSocketConstructor = new (url: string) => BrowserWebSocket;

const OPEN = 1;

export function browserWebSocketTransport(WebSocketCtor: BrowserWebSocketConstructor): SocketFactory {
  return (url: string, handlers: SocketHandlers): ClientSocket => {
    const ws = new WebSocketCtor(url);
    ws.binaryType = 'arraybuffer';
    let closedByUs = false;
    ws.onopen = () => {
      if (!closedByUs) handlers.onOpen();
    };
    ws.onmessage = (ev) => {
      if (!closedByUs && ev.data instanceof ArrayBuffer) handlers.onMessage(new Uint8Array(ev.data));
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (!closedByUs) handlers.onClose(`closed (${ev.code}${ev.reason === '' ? '' : `: ${ev.reason}`})`);
    };
    return {
      send(frame: Uint8Array): void {
        if (ws.readyState === OPEN) ws.send(frame);
      },
      get bufferedAmount(): number {
        return ws.bufferedAmount;
      },
      close(): void {
        closedByUs = true;
        ws.close();
      },
    };
  };
}
