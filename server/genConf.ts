/**
 * `pompe gen-conf` and `pompe keygen`: a cluster's configuration directory (conf.ts describes the
 * files). Keys come from the platform's secure randomness; genesisUs is the time of generation.
 *
 * Two ways to key a cluster:
 *  - gen-conf makes every replica's key (local and test clusters): the secret files are all in
 *    the output directory, and deploying sends each host only its own (scripts/deploy.sh);
 *  - each host runs `pompe keygen` and keeps its secret; gen-conf --public-keys builds
 *    cluster.json from the printed public keys and writes no secret at all.
 * With --tls, a cluster CA and a certificate per replica (tlsCerts.ts) go beside them.
 */
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bytesEqual, fromHex } from '../common/bytes.js';
import { formatClusterConfig, tryGenerateCluster, type ClusterConfig, type ClusterTls, type CommitRule, type ProtocolConfig } from '../common/config.js';
import { ED25519_PUBLIC_KEY_BYTES, type CryptoBackend } from '../common/crypto/types.js';
import { replicaId } from '../common/ids.js';
import { formatClientKeyFile, formatSecretFile, MAX_SECRET_FILE_CHARS, parseClientKeyFile, parseSecretFile } from '../common/keys.js';
import { CLIENT_HOSTS_FILE, CLUSTER_FILE, ConfError, SERVER_HOSTS_FILE, secretFileName, tlsCertFileName, tlsKeyFileName, writeSecretFile } from './conf.js';
import type { ClusterCertificates } from './tlsCerts.js';

/**
 * Protocol defaults for a cluster on one machine or a LAN: liveness on a busy machine first, then
 * latency (the light-load target, exec p50 ≤ 20 ms, is not met; see deltaUs). The cores' defaults
 * (common/protocol-config.ts) are more conservative. Exec latency at light load is about
 *   the ordering phase + Δ + slot/2 (the batch's slot must be sealed) + one filler view (the leader
 *   proposes it when its own ack becomes sealable; its votes bring the seals) + the block carrying
 *   the entry and the commit chain (2 more views with 2-chain), each view costing a network round
 *   and a synced write at the followers.
 * Figures: dev VM (2 cores), 4 replicas and the benchmark client on it, scripts/bench-cluster.sh.
 *  - slotUs 2 ms: a batch waits for its slot to close; 500 slots/s is still cheap bookkeeping.
 *  - deltaUs 30 ms: liveness needs clock skew plus the ordering phase below Δ; a batch whose phase
 *    2 reaches a replica more than ~Δ after its timestamp is refused `late` and restarts phase 1
 *    with the same bytes, which adds load. At peak (4 clients × 4 batches of 1000) the ordering
 *    phase takes 20–30 ms at the median on this machine: Δ = 10 ms restarted most batches several
 *    times (36.6k cmd/s), 30 ms restarts ~5% once (~100k cmd/s), 50 ms ~1% at the same throughput
 *    and ~10 ms more latency. At light load (1 client, batches of 1, 4 in flight) Δ adds to exec
 *    latency one for one: p50 45 ms at 10 ms, 59 ms at 30. Robustness under load wins;
 *    `--delta-us 10000` on a lightly loaded cluster for latency.
 *  - minBlockIntervalUs 1 ms: while there is work, commits move at network and disk speed.
 *  - idleBlockIntervalUs 250 ms: a filler view costs each replica 1–4 ms of CPU (signatures, its
 *    messages' socket writes, a synced write): an idle 4-replica cluster cost each replica 5–10% of
 *    a core at 50 ms and 2–3% at 250 ms. Entries do not wait for it: the leader's prompt filler
 *    and the views that follow carry them (light-load exec p50 60–61 ms at 250 ms, 62–72 at 50).
 *    Half the view timeout, so a follower never times out an idle leader.
 *  - viewTimeoutMs 500: a healthy loopback view takes a few ms, so 500 ms is far above any GC
 *    pause yet replaces a crashed leader in half a second.
 *  - commitRule 2-chain (Jolteon / DiemBFT v4): commits one view sooner than classic 3-chain
 *    HotStuff (light-load exec p50 59 vs 64 ms); `--commit-rule 3-chain` for libhotstuff's rule,
 *    as in Pompe-HS.
 */
export const LOOPBACK_PROTOCOL: Partial<ProtocolConfig> = {
  commitRule: '2-chain',
  slotUs: 2_000,
  deltaUs: 30_000,
  minBlockIntervalUs: 1_000,
  idleBlockIntervalUs: 250_000,
  viewTimeoutMs: 500,
  // 2,500 slots of 2 ms: a checkpoint every 5 s, as DEFAULT_PROTOCOL's 1,000 slots of 5 ms.
  checkpointIntervalSlots: 2_500,
};

/** More replicas than this on one host and the default Δ is likely too short (a warning says so). */
const CROWDED_REPLICAS_PER_HOST = 4;

export interface GenConfOptions {
  readonly replicas: number;
  readonly out: string;
  readonly hosts?: readonly string[];
  readonly clientHosts?: readonly string[];
  readonly basePeerPort?: number;
  readonly baseClientPort?: number;
  readonly baseHttpPort?: number;
  readonly commitRule?: CommitRule;
  readonly slotUs?: number;
  readonly deltaUs?: number;
  readonly viewTimeoutMs?: number;
  readonly minBlockIntervalUs?: number;
  readonly idleBlockIntervalUs?: number;
  readonly checkpointIntervalSlots?: number;
  readonly devSingleReplica?: boolean;
  /** The replicas' public keys, made on their hosts (`pompe keygen`); then no secret is written. */
  readonly publicKeys?: readonly Uint8Array[] | undefined;
  /** Serve wss://: a cluster CA and a certificate per replica (tlsCerts.ts). */
  readonly tls?: boolean;
  /** Overwrite an existing configuration. */
  readonly force?: boolean;
  /** Start of slot 0; default now. */
  readonly genesisUs?: number;
  /** The allow-list of client keys (readClientKeys); omitted: any client key may submit. */
  readonly clientKeys?: readonly Uint8Array[];
}

export interface GenConfResult {
  readonly files: string[];
  readonly warnings: string[];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export async function genConf(opts: GenConfOptions, crypto: CryptoBackend): Promise<GenConfResult> {
  const hosts = opts.hosts ?? ['127.0.0.1'];
  const protocol: { -readonly [K in keyof ProtocolConfig]?: ProtocolConfig[K] } = { ...LOOPBACK_PROTOCOL, genesisUs: opts.genesisUs ?? Date.now() * 1000 };
  const set = <K extends keyof ProtocolConfig>(key: K, value: ProtocolConfig[K] | undefined): void => {
    if (value !== undefined) protocol[key] = value;
  };
  set('commitRule', opts.commitRule);
  set('slotUs', opts.slotUs);
  set('deltaUs', opts.deltaUs);
  set('viewTimeoutMs', opts.viewTimeoutMs);
  set('minBlockIntervalUs', opts.minBlockIntervalUs);
  set('idleBlockIntervalUs', opts.idleBlockIntervalUs);
  set('checkpointIntervalSlots', opts.checkpointIntervalSlots);
  // A Δ shorter than the slot is refused by validation; keep the pair consistent when only the
  // slot was raised on the command line.
  if (opts.deltaUs === undefined && protocol.slotUs !== undefined && protocol.deltaUs !== undefined && protocol.deltaUs < protocol.slotUs) {
    protocol.deltaUs = protocol.slotUs;
  }
  if (opts.idleBlockIntervalUs === undefined && protocol.minBlockIntervalUs !== undefined && protocol.idleBlockIntervalUs !== undefined) {
    protocol.idleBlockIntervalUs = Math.max(protocol.idleBlockIntervalUs, protocol.minBlockIntervalUs);
  }
  const clusterPath = join(opts.out, CLUSTER_FILE);
  if (!opts.force && (await exists(clusterPath))) throw new ConfError('mismatch', clusterPath, 'a configuration is already there; pass --force to replace it (new keys: a new cluster)');
  const replicaHosts = Array.from({ length: opts.replicas }, (_, i) => hosts[i % hosts.length]!);
  const certificates = opts.tls === true ? await (await import('./tlsCerts.js')).makeClusterCertificates(replicaHosts, `${protocol.genesisUs}`, Date.now()) : null;
  const tls: ClusterTls | undefined = certificates === null ? undefined : { ca: certificates.caPem };
  const generated = tryGenerateCluster(
    {
      n: opts.replicas,
      hosts,
      basePeerPort: opts.basePeerPort,
      baseClientPort: opts.baseClientPort,
      baseHttpPort: opts.baseHttpPort,
      protocol,
      devSingleReplica: opts.devSingleReplica === true,
      ...(opts.publicKeys === undefined ? {} : { publicKeys: opts.publicKeys }),
      ...(tls === undefined ? {} : { tls }),
      ...(opts.clientKeys === undefined ? {} : { clientKeys: opts.clientKeys }),
    },
    crypto,
  );
  if (!generated.ok) throw new ConfError('invalid', opts.out, generated.error.message);
  const warnings: string[] = [];
  const perHost = Math.ceil(opts.replicas / hosts.length);
  if (perHost > CROWDED_REPLICAS_PER_HOST && opts.deltaUs === undefined) {
    warnings.push(
      `${perHost} replicas share each host's cores: the ordering phase then takes far longer than on a host of its own, and ` +
        `Δ = ${(protocol.deltaUs ?? 0) / 1000} ms may refuse most batches as late (16 replicas on a 2-core machine needed Δ ≈ 250 ms); ` +
        'consider --delta-us',
    );
  }
  if (await exists(join(opts.out, 'data'))) {
    warnings.push(`${join(opts.out, 'data')} holds stores of the previous cluster; replicas will refuse them (move them away)`);
  }
  await mkdir(opts.out, { recursive: true });
  const { config, keyPairs } = generated.value;
  const files: string[] = [];
  const write = async (name: string, text: string): Promise<void> => {
    await writeFile(join(opts.out, name), text);
    files.push(join(opts.out, name));
  };
  await write(CLUSTER_FILE, formatClusterConfig(config));
  // Empty when the public keys were given: the secrets are on the hosts that made them.
  for (const [i, keyPair] of keyPairs.entries()) {
    const path = join(opts.out, secretFileName(i));
    await writeSecretFile(path, formatSecretFile(replicaId(i), keyPair), true);
    files.push(path);
  }
  if (certificates !== null) files.push(...(await writeCertificates(opts.out, certificates)));
  await removeStaleKeys(opts.out, config, files, crypto);
  // Pompe-HS layout: line i is replica i's host; clients are spread over client.hosts.
  await write(SERVER_HOSTS_FILE, config.replicas.map((r) => `${r.host}\n`).join(''));
  await write(CLIENT_HOSTS_FILE, (opts.clientHosts ?? ['127.0.0.1']).map((h) => `${h}\n`).join(''));
  return { files, warnings };
}

const REPLICA_KEY_FILE = /^replica-(\d+)\.(secret\.json|tls\.crt|tls\.key)$/;

/**
 * Removes key files of a cluster this run replaced (--force), which scripts/deploy.sh would
 * otherwise send to the hosts over the keys made there: a secret key that is not its replica's
 * key in the new cluster.json, and TLS files this run did not write.
 */
async function removeStaleKeys(out: string, config: ClusterConfig, written: readonly string[], crypto: CryptoBackend): Promise<void> {
  const keep = new Set(written);
  for (const name of await readdir(out)) {
    const match = REPLICA_KEY_FILE.exec(name);
    const path = join(out, name);
    if (match === null || keep.has(path)) continue;
    if (match[2] === 'secret.json') {
      const secret = parseSecretFile(await readFile(path, 'utf8'), crypto);
      const expected = config.replicas[Number(match[1])]?.publicKey;
      if (secret.ok && expected !== undefined && bytesEqual(secret.value.keyPair.publicKey, expected)) continue;
    }
    await rm(path);
  }
}

async function writeCertificates(out: string, certificates: ClusterCertificates): Promise<string[]> {
  const files: string[] = [];
  for (const [i, cert] of certificates.replicas.entries()) {
    const certPath = join(out, tlsCertFileName(i));
    await writeFile(certPath, cert.certPem, { mode: 0o644 });
    const keyPath = join(out, tlsKeyFileName(i));
    await writeSecretFile(keyPath, cert.keyPem, true);
    files.push(certPath, keyPath);
  }
  return files;
}

/**
 * The public keys for --public-keys: `value` is a file with one hex key per line (blank lines and
 * # comments skipped), or the keys themselves, comma-separated. Order = replica ids.
 */
export async function readPublicKeys(value: string, option = '--public-keys'): Promise<Uint8Array[]> {
  let text = value;
  let source = option;
  if (!/^[0-9a-fA-F]{64}(,|$)/.test(value.trim())) {
    try {
      text = await readFile(value, 'utf8');
      source = value;
    } catch (error) {
      throw new ConfError('unreadable', value, `${option} is neither hex keys nor a readable file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  const entries = text
    .split(source === value ? /\n/ : /,/)
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line.length > 0);
  return entries.map((hex, i) => {
    const key = hex.length === ED25519_PUBLIC_KEY_BYTES * 2 ? fromHex(hex) : null;
    if (key === null) throw new ConfError('invalid', source, `entry ${i + 1} is not a ${ED25519_PUBLIC_KEY_BYTES}-byte key in hex (as \`pompe keygen\` prints): '${hex.slice(0, 80)}'`);
    return key;
  });
}

/** `pompe keygen`: a fresh key file for replica `replica` (its directory made if missing); returns its public key. */
/**
 * The client keys for an allow-list (`gen-conf --client-keys`): from a directory, the public key
 * of every client key file (`*.json`, written by `pompe keygen --client`) in it; otherwise what
 * readPublicKeys reads (a file of hex keys, one per line, or hex keys separated by commas).
 */
export async function readClientKeys(path: string, crypto: CryptoBackend): Promise<Uint8Array[]> {
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfError('unreadable', file, `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  };
  const isDir = await stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (isDir) {
    const keys: Uint8Array[] = [];
    for (const name of (await readdir(path)).filter((f) => f.endsWith('.json')).sort()) {
      const text = await read(join(path, name));
      const parsed = text.length > MAX_SECRET_FILE_CHARS ? null : parseClientKeyFile(text, crypto);
      if (parsed === null || !parsed.ok) throw new ConfError('invalid', join(path, name), parsed === null ? 'too large for a client key file' : parsed.error.message);
      keys.push(parsed.value.publicKey);
    }
    return keys;
  }
  return readPublicKeys(path, '--client-keys');
}

/** `pompe keygen --client`: a fresh client key file; returns its public key. */
export async function clientKeygen(out: string, force: boolean, crypto: CryptoBackend): Promise<Uint8Array> {
  const keyPair = crypto.generateKeyPair();
  try {
    await writeSecretFile(out, formatClientKeyFile(keyPair), force);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ConfError('mismatch', out, 'a file is already there; pass --force to replace it');
    throw new ConfError('unreadable', out, `cannot write the key file (${code ?? String(error)})`);
  }
  return keyPair.publicKey;
}

export async function keygen(out: string, replica: number, force: boolean, crypto: CryptoBackend): Promise<Uint8Array> {
  const keyPair = crypto.generateKeyPair();
  try {
    await mkdir(dirname(out), { recursive: true });
    await writeSecretFile(out, formatSecretFile(replicaId(replica), keyPair), force);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ConfError('mismatch', out, 'a file is already there; pass --force to replace it');
    throw new ConfError('unreadable', out, `cannot write the key file (${code ?? String(error)})`);
  }
  return keyPair.publicKey;
}
