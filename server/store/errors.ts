/**
 * Typed errors for problems of the environment around the store (a second process on the same data
 * directory, damaged files, a full or failing disk). They carry a message meant for an operator and
 * are reported without a stack trace. Our own records that fail to decode are not these: that is
 * a broken invariant and asserts (see records.ts).
 */

export type StoreOpenProblem =
  /** Another process holds the LevelDB lock: most likely a second replica on this directory. */
  | 'locked'
  /** LevelDB found damaged files (a manifest, table or log it cannot read). */
  | 'corrupt'
  /** No store at the path, and the caller did not allow creating one. */
  | 'missing'
  /** The directory holds a database that is not ours, or one of a schema version we do not read. */
  | 'incompatible'
  /** Anything else the file system refused (permissions, missing files, no space). */
  | 'io';

export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';

  constructor(
    readonly problem: StoreOpenProblem,
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open the store at ${path}: ${detail}`, options);
  }
}

/** A batch that LevelDB failed to write. The store is then unusable: every later write fails with
 *  the same error, because writing on after a lost write would leave a hole behind durable data. */
export class StoreWriteError extends Error {
  override readonly name = 'StoreWriteError';

  constructor(detail: string, options?: { cause?: unknown }) {
    super(`store write failed: ${detail}`, options);
  }
}

/** The `code` of a level error (abstract-level's ModuleError), or of its cause. */
export function levelErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The innermost message of a level error: the outer one is usually just "Database failed to open". */
export function levelErrorDetail(error: unknown): string {
  let e: unknown = error;
  while (typeof e === 'object' && e !== null && (e as { cause?: unknown }).cause !== undefined) e = (e as { cause: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}
