/**
 * A replica's configuration directory (what `pompe gen-conf` writes):
 *
 *   cluster.json                     the cluster config, the same file on every replica
 *   replica-<i>.secret.json          replica i's key (mode 0600), on replica i's host only
 *   replica-<i>.tls.crt, .tls.key    replica i's TLS certificate and key (0600), when cluster.json has `tls`
 *   replica-<i>.initialised.json     written by replica i when it created its store (see below)
 *   server.hosts, client.hosts       one host per line, for the experiment scripts
 *
 * Problems of the environment (a missing or invalid file, a key that belongs to another replica,
 * a secret others can read) are ConfErrors with a message for the operator; they are reported
 * without a stack trace.
 *
 * The initialised marker. A replica that restarts with an empty store has forgotten its votes and
 * acks and could equivocate, so its store is created only on the replica's first start; later
 * starts open it with createIfMissing false, and a wrong or unmounted --data-dir stops the replica
 * instead of silently starting afresh. The marker lives in the conf directory, not beside the data,
 * so that losing the data directory (or mounting the wrong disk) does not lose the marker with it.
 * It names the cluster, so a marker left from an earlier `gen-conf --force` is ignored.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { bytesEqual, toHex } from '../common/bytes.js';
import { parseClusterConfig, type ClusterConfig } from '../common/config.js';
import type { CryptoBackend, KeyPair } from '../common/crypto/types.js';
import { replicaId, type ReplicaId } from '../common/ids.js';
import { parseSecretFile } from '../common/keys.js';
import type { ServerTls } from './transport/serverBackend.js';

export const CLUSTER_FILE = 'cluster.json';
export const SERVER_HOSTS_FILE = 'server.hosts';
export const CLIENT_HOSTS_FILE = 'client.hosts';
export const secretFileName = (id: number): string => `replica-${id}.secret.json`;
export const markerFileName = (id: number): string => `replica-${id}.initialised.json`;
export const tlsCertFileName = (id: number): string => `replica-${id}.tls.crt`;
export const tlsKeyFileName = (id: number): string => `replica-${id}.tls.key`;
/** The data directory when --data-dir is not given. */
export const defaultDataDir = (confDir: string, id: number): string => join(confDir, 'data', `replica-${id}`);

/** Secret files must not be readable by group or others. */
export const SECRET_FILE_MODE = 0o600;

export type ConfProblem = 'missing' | 'unreadable' | 'invalid' | 'mismatch' | 'insecure';

export class ConfError extends Error {
  override readonly name = 'ConfError';

  constructor(
    readonly problem: ConfProblem,
    readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

export interface ReplicaConf {
  readonly confDir: string;
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly keyPair: KeyPair;
  /** This replica's certificate and key, when the cluster speaks TLS. */
  readonly tls: ServerTls | null;
}

/** Where this replica's TLS files are, when not at their default names in the conf directory. */
export interface TlsFileOptions {
  readonly tlsCertFile?: string | undefined;
  readonly tlsKeyFile?: string | undefined;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfError('missing', path, `no ${what} there`);
    throw new ConfError('unreadable', path, `cannot read the ${what} (${code ?? String(error)})`);
  }
}

/** Refuses a secret file that its group or others can read (the key would no longer be secret). */
async function checkSecretMode(path: string, what: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    return; // reading it reports what is wrong
  }
  if ((mode & 0o077) !== 0) {
    throw new ConfError('insecure', path, `the ${what} is readable by group or others (mode ${mode.toString(8).padStart(3, '0')}); chmod 600 it`);
  }
}

/** Loads and cross-checks the cluster config and replica `id`'s keys (and TLS files) from `confDir`. */
export async function loadReplicaConf(confDir: string, id: number, crypto: CryptoBackend, files: TlsFileOptions = {}): Promise<ReplicaConf> {
  const clusterPath = join(confDir, CLUSTER_FILE);
  const parsed = parseClusterConfig(await readText(clusterPath, 'cluster config'), crypto);
  if (!parsed.ok) throw new ConfError('invalid', clusterPath, parsed.error.message);
  const config = parsed.value;
  if (!(Number.isSafeInteger(id) && id >= 0 && id < config.n)) {
    throw new ConfError('mismatch', clusterPath, `the cluster has replicas 0..${config.n - 1}; there is no replica ${id}`);
  }
  const secretPath = join(confDir, secretFileName(id));
  await checkSecretMode(secretPath, `secret key file of replica ${id}`);
  const secret = parseSecretFile(await readText(secretPath, `secret key file of replica ${id}`), crypto);
  if (!secret.ok) throw new ConfError('invalid', secretPath, secret.error.message);
  if (secret.value.replica !== id) throw new ConfError('mismatch', secretPath, `it is replica ${secret.value.replica}'s key file, not replica ${id}'s`);
  const expected = config.replicas[id]!.publicKey;
  if (!bytesEqual(secret.value.keyPair.publicKey, expected)) {
    throw new ConfError(
      'mismatch',
      secretPath,
      `its public key ${toHex(secret.value.keyPair.publicKey)} is not replica ${id}'s key in ${CLUSTER_FILE} (${toHex(expected)}): the files come from different gen-conf runs`,
    );
  }
  const tls = config.tls === undefined ? null : await loadReplicaTls(config, id, files.tlsCertFile ?? join(confDir, tlsCertFileName(id)), files.tlsKeyFile ?? join(confDir, tlsKeyFileName(id)));
  return { confDir, config, self: replicaId(id), keyPair: secret.value.keyPair, tls };
}

/**
 * Replica `id`'s certificate and key, checked here so that a wrong file stops the replica with a
 * clear message instead of failing every peer's TLS handshake: the key matches the certificate,
 * the certificate names the replica's host, and it was signed by the cluster's CA (when named).
 */
async function loadReplicaTls(config: ClusterConfig, id: number, certFile: string, keyFile: string): Promise<ServerTls> {
  const host = config.replicas[id]!.host;
  await checkSecretMode(keyFile, `TLS key of replica ${id}`);
  const certPem = await readText(certFile, `TLS certificate of replica ${id} (the cluster config has tls)`);
  const keyPem = await readText(keyFile, `TLS key of replica ${id}`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    throw new ConfError('invalid', certFile, `not a PEM certificate (${(error as Error).message})`);
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new ConfError('mismatch', keyFile, `it is not the key of the certificate ${certFile}`);
  } catch (error) {
    if (error instanceof ConfError) throw error;
    throw new ConfError('invalid', keyFile, `not a PEM private key (${(error as Error).message})`);
  }
  const named = isIP(host) === 0 ? cert.checkHost(host) !== undefined : cert.checkIP(host) !== undefined;
  if (!named) throw new ConfError('mismatch', certFile, `the certificate does not name replica ${id}'s host ${host} (subject ${cert.subject.replace(/\n/g, ', ')}): peers and clients would refuse it`);
  const ca = config.tls?.ca ?? null;
  if (ca !== null && !caCertificates(ca).some((c) => cert.checkIssued(c) && cert.verify(c.publicKey))) {
    throw new ConfError('mismatch', certFile, `the certificate was not signed by the CA in ${CLUSTER_FILE} (issuer ${cert.issuer.replace(/\n/g, ', ')}): the files come from different gen-conf runs?`);
  }
  return { certFile: resolve(certFile), keyFile: resolve(keyFile), certPem, keyPem };
}

/** The certificates of the cluster's PEM bundle. */
function caCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (error) {
    throw new ConfError('invalid', CLUSTER_FILE, `tls.ca holds a certificate that does not parse (${(error as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// The initialised marker

export interface StoreMarker {
  readonly clusterId: string;
  readonly replica: number;
  readonly dataDir: string;
  readonly createdAt: string;
}

/** The marker of replica `id` for this cluster, or null (none, or one of another cluster). */
export async function readStoreMarker(confDir: string, id: number, config: ClusterConfig): Promise<StoreMarker | null> {
  const path = join(confDir, markerFileName(id));
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfError('unreadable', path, `cannot read the store marker (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let marker: unknown;
  try {
    marker = JSON.parse(text);
  } catch {
    throw new ConfError('invalid', path, 'the store marker is not JSON; if this replica never ran, delete it');
  }
  const m = marker as Partial<StoreMarker>;
  if (typeof m.clusterId !== 'string' || typeof m.dataDir !== 'string' || m.replica !== id) {
    throw new ConfError('invalid', path, 'the store marker lacks clusterId, replica or dataDir; if this replica never ran, delete it');
  }
  return m.clusterId === toHex(config.clusterId) ? (m as StoreMarker) : null;
}

/** Records that replica `id` created its store at `dataDir` (written atomically, by rename). */
export async function writeStoreMarker(confDir: string, id: number, config: ClusterConfig, dataDir: string): Promise<void> {
  const path = join(confDir, markerFileName(id));
  const marker: StoreMarker = { clusterId: toHex(config.clusterId), replica: id, dataDir: resolve(dataDir), createdAt: new Date().toISOString() };
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

/** Writes a secret file with mode 0600 (also when it already existed with a looser mode). */
export async function writeSecretFile(path: string, text: string, overwrite: boolean): Promise<void> {
  await writeFile(path, text, { mode: SECRET_FILE_MODE, flag: overwrite ? 'w' : 'wx' });
  await chmod(path, SECRET_FILE_MODE);
}
