/** The fault kinds a simulation run may draw from (THREATS.md), and parsing of `--faults`. */
import type { Result } from '../common/errors.js';
import { err, ErrorCode, ok } from '../common/errors.js';

export const NETWORK_FAULTS = ['crash', 'partition', 'loss', 'duplicate'] as const;

export function parseFaultList(text: string, known: readonly string[]): Result<Set<string>> {
  if (text === 'all') return ok(new Set(known));
  if (text === 'none') return ok(new Set());
  const kinds = new Set<string>();
  for (const k of text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    if (!known.includes(k)) return err(ErrorCode.InvalidField, `unknown fault kind '${k}' (known: ${known.join(', ')}, all, none)`);
    kinds.add(k);
  }
  return ok(kinds);
}
