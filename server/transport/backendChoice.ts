/**
 * Choosing the server library for a replica's ports at start-up:
 *
 *   auto  (default) native uWS if a build loads here (uws.ts), else `ws` with a loud warning:
 *         the replica runs on any supported Node, at lower throughput.
 *   uws   native uWS or refuse to start (UwsUnavailableError): for benchmarks, whose figures
 *         would mean something else on `ws`.
 *   ws    `ws` even where uWS loads (comparisons, debugging).
 *
 * The operator's word comes from `pompe replica --server-backend` or POMPE_SERVER_BACKEND.
 */
import { uwsBackend } from './uwsServer.js';
import type { ServerBackend } from './serverBackend.js';
import { loadedUws, type UwsProbe } from './uws.js';
import { wsBackend } from './wsServer.js';

export const SERVER_BACKEND_CHOICES = ['auto', 'uws', 'ws'] as const;
export type ServerBackendChoice = (typeof SERVER_BACKEND_CHOICES)[number];

/** Environment variable read by `pompe replica` when --server-backend is not given. */
export const SERVER_BACKEND_ENV = 'POMPE_SERVER_BACKEND';

export function isServerBackendChoice(value: string): value is ServerBackendChoice {
  return (SERVER_BACKEND_CHOICES as readonly string[]).includes(value);
}

/** `uws` was required and no native build loads on this Node and libc. */
export class UwsUnavailableError extends Error {
  override readonly name = 'UwsUnavailableError';
}

export interface ChosenBackend {
  readonly backend: ServerBackend;
  /** Why `auto` ended up on `ws` (each uWS build's failure); null when nothing fell back. */
  readonly fallbackReason: string | null;
}

export function chooseServerBackend(choice: ServerBackendChoice, probe: () => UwsProbe = loadedUws): ChosenBackend {
  if (choice === 'ws') return { backend: wsBackend, fallbackReason: null };
  const loaded = probe();
  if (loaded.ok) return { backend: uwsBackend(loaded.uws), fallbackReason: null };
  const reason = loaded.reasons.join('; ');
  if (choice === 'uws') {
    throw new UwsUnavailableError(
      `no uWebSockets.js build loads on Node ${process.versions.node} (ABI ${process.versions.modules}) here (${reason}); ` +
        `refusing to start because the uws server backend was required (--server-backend uws or ${SERVER_BACKEND_ENV}=uws)`,
    );
  }
  return { backend: wsBackend, fallbackReason: reason };
}

/** The warning an `auto` fallback logs (and `pompe replica` also prints to stderr). */
export function fallbackWarning(reason: string): string {
  return (
    `no uWebSockets.js build loads on Node ${process.versions.node} (${reason}): serving on the ws backend, ` +
    'which carries far less load than uWS. Figures measured on this replica are not comparable with uWS ones; ' +
    `--server-backend uws (or ${SERVER_BACKEND_ENV}=uws) refuses to start instead`
  );
}
