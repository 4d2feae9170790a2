/**
 * Environment a replica process should start with. glibc reads its malloc tunables when the
 * process starts, so a replica cannot set them for itself: whoever launches one does
 * (scripts/localCluster.ts, scripts/lib/cluster.sh, experiments/run_server.sh, the systemd unit),
 * and `pompe replica` warns when they are missing.
 *
 * MALLOC_ARENA_MAX=2: by default glibc gives each thread that allocates its own arena (up to 8 per
 * core). A replica's LevelDB writes, reads and compactions run on libuv's pool threads and LevelDB's
 * own thread, each filling and freeing memtable-sized memory in an arena of its own; freed memory
 * stays resident in each. At peak, 7-minute soaks here: replica 0's malloc arenas 268 MiB with the
 * default, 195 MiB with 2 arenas (the main one and one for every other thread), resident memory
 * max 480 / 439 / 412 / 426 MiB against 409 / 397 / 385 / 384.
 */
export const REPLICA_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** `env` with REPLICA_PROCESS_ENV's settings added where `env` has none of its own. */
export function withReplicaProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...REPLICA_PROCESS_ENV, ...env };
}

/** The settings of REPLICA_PROCESS_ENV this process started without (glibc systems only). */
export function missingReplicaProcessEnv(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): string[] {
  if (platform !== 'linux') return [];
  return Object.keys(REPLICA_PROCESS_ENV).filter((name) => env[name] === undefined);
}
