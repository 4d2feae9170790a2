/**
 * Which files of a results directory the process script reads, following Pompe-HS process.py:
 * every file whose name contains the kind's word. Refinements, each because mixing the files would
 * make the numbers meaningless:
 * - per-command detail logs (`client<i>.detail.log`) have another format and are never latency logs;
 * - kind `client` (the HotStuff baseline's `client<i>.log`) skips order and exec logs, whose names
 *   also contain "client";
 * - this script's own outputs (plots, JSON summaries) are skipped, so re-running over a directory
 *   that holds them does not count their bytes as malformed lines.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';

export const LOG_KINDS = ['order', 'exec', 'client'] as const;
export type LogKind = (typeof LOG_KINDS)[number];

export function isLogKind(word: string): word is LogKind {
  return (LOG_KINDS as readonly string[]).includes(word);
}

const DETAIL_WORD = 'detail';
const OUTPUT_EXTENSIONS = new Set(['.svg', '.png', '.json', '.pdf']);

function isLatencyLogName(name: string, kind: LogKind): boolean {
  if (!name.includes(kind) || name.includes(DETAIL_WORD)) return false;
  if (OUTPUT_EXTENSIONS.has(extname(name).toLowerCase())) return false;
  if (kind === 'client' && (name.includes('order') || name.includes('exec'))) return false;
  return true;
}

/** Regular files (symlinks followed) of `dir` whose names pass `accept`, as sorted full paths. */
async function filesNamed(dir: string, accept: (name: string) => boolean): Promise<string[]> {
  const names = (await readdir(dir)).filter(accept).sort();
  const paths = names.map((name) => join(dir, name));
  const stats = await Promise.all(paths.map((path) => stat(path).catch(() => undefined)));
  return paths.filter((_, i) => stats[i]?.isFile() === true);
}

export function latencyLogFiles(dir: string, kind: LogKind): Promise<string[]> {
  return filesNamed(dir, (name) => isLatencyLogName(name, kind));
}

export function detailLogFiles(dir: string): Promise<string[]> {
  return filesNamed(dir, (name) => name.includes(DETAIL_WORD) && !OUTPUT_EXTENSIONS.has(extname(name).toLowerCase()));
}
