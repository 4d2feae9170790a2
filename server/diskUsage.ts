/**
 * The bytes a replica's store takes on disk: the sizes of the files in its data directory (LevelDB
 * keeps one flat directory), sampled in the background, never on the hot path. What /status and
 * the soak scripts report as the store size.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export class DiskUsage {
  private current = 0;
  private sampling = false;

  constructor(private readonly dir: string) {}

  /** Bytes at the last sample (0 before the first). */
  get bytes(): number {
    return this.current;
  }

  /** Starts a sample unless one is running; files that vanish meanwhile (compaction) count 0. */
  sample(): void {
    if (this.sampling) return;
    this.sampling = true;
    directoryBytes(this.dir)
      .then((bytes) => (this.current = bytes))
      .catch(() => undefined)
      .finally(() => (this.sampling = false));
  }
}

export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    const s = await stat(join(dir, name)).catch(() => null);
    if (s?.isFile() === true) total += s.size;
  }
  return total;
}
