/**
 * Assertions are for programmer errors only: a broken invariant inside a core means the code is
 * wrong, and continuing could break safety, so we crash loudly. Bad input from the network or a
 * user is never asserted on; it becomes a typed error (see errors.ts).
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, what = 'value'): never {
  throw new AssertionError(`unreachable: unexpected ${what} ${JSON.stringify(value)}`);
}
