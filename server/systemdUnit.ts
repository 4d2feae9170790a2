/**
 * `pompe systemd`: a systemd service unit that supervises one replica: restarted when it fails,
 * run as its own unprivileged user with bounded resources and a read-only view of the system
 * except its store and its conf directory (where it writes its initialised marker, conf.ts).
 *
 * Paths are those of the host the command runs on (its node, its installed pompe), so run it on
 * each replica's host: `pompe systemd --conf <dir> --id <i> --out /etc/systemd/system/pompe-replica-<i>.service`.
 */
import { resolve } from 'node:path';
import { ExitCode } from './replica.js';
import { REPLICA_PROCESS_ENV } from './processEnv.js';

/** systemd creates /var/lib/<STATE_DIRECTORY_ROOT>/replica-<i> for the service's user. */
export const STATE_DIRECTORY_ROOT = 'pompe';

/**
 * Limits, each because something outside can grow it:
 * - open files: a socket per client connection and per peer, plus LevelDB's table files;
 * - memory: far above the design's 512 MiB per replica, so a leak stops this service, not the host;
 * - tasks: Node's threads, libuv's pool and LevelDB's compaction thread are a few dozen.
 */
export const UNIT_LIMITS = { openFiles: 65_536, memoryMax: '4G', tasksMax: 256 } as const;

/** A stop drains persists for up to SHUTDOWN_DRAIN_TIMEOUT_MS (5 s) and then flushes the log. */
const STOP_TIMEOUT_S = 30;
/** A replica that keeps failing is given up on after this many starts a minute (systemctl status shows why). */
const START_LIMIT_BURST = 5;

export interface SystemdUnitOptions {
  readonly id: number;
  readonly confDir: string;
  /** Default: /var/lib/pompe/replica-<id>, created by systemd (StateDirectory). */
  readonly dataDir?: string | undefined;
  readonly user: string;
  /** The node binary and the CLI script (dist/server/cli.js) to run. */
  readonly nodePath: string;
  readonly cliPath: string;
  /** Extra `pompe replica` arguments (e.g. --server-backend uws). */
  readonly replicaArgs?: readonly string[];
}

export function unitName(id: number): string {
  return `pompe-replica-${id}.service`;
}

/** Quotes one ExecStart argument for systemd when it needs it. */
function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

export function systemdUnit(o: SystemdUnitOptions): string {
  const confDir = resolve(o.confDir);
  const stateDirectory = `${STATE_DIRECTORY_ROOT}/replica-${o.id}`;
  const dataDir = o.dataDir === undefined ? `/var/lib/${stateDirectory}` : resolve(o.dataDir);
  const exec = [o.nodePath, o.cliPath, 'replica', '--conf', confDir, '--id', String(o.id), '--data-dir', dataDir, '--log-format', 'json', ...(o.replicaArgs ?? [])];
  const writable = o.dataDir === undefined ? [confDir] : [confDir, dataDir];
  return `# Written by \`pompe systemd\`. Install it as /etc/systemd/system/${unitName(o.id)}, then:
#   useradd --system --no-create-home ${o.user}; chown -R ${o.user}: ${confDir}${o.dataDir === undefined ? '' : ` ${dataDir}`}
#   systemctl daemon-reload && systemctl enable --now ${unitName(o.id)}
[Unit]
Description=pompe-ts replica ${o.id} (conf ${confDir})
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=60
StartLimitBurst=${START_LIMIT_BURST}

[Service]
Type=simple
User=${o.user}
Group=${o.user}
ExecStart=${exec.map(quoteArg).join(' ')}
${Object.entries(REPLICA_PROCESS_ENV)
  .map(([name, value]) => `Environment=${name}=${value}`)
  .join('\n')}
Restart=on-failure
RestartSec=2
# Exit ${ExitCode.Environment}: the configuration, a port or the store is wrong; restarting cannot fix it.
RestartPreventExitStatus=${ExitCode.Environment}
KillSignal=SIGTERM
TimeoutStopSec=${STOP_TIMEOUT_S}
${o.dataDir === undefined ? `StateDirectory=${stateDirectory}\nStateDirectoryMode=0700\n` : ''}ReadWritePaths=${writable.join(' ')}
LimitNOFILE=${UNIT_LIMITS.openFiles}
MemoryMax=${UNIT_LIMITS.memoryMax}
TasksMax=${UNIT_LIMITS.tasksMax}
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
`;
}
