/**
 * The cluster config (`cluster.json`): who the replicas are, where they listen, their public keys,
 * and the protocol parameters (protocol-config.ts). Pure text ↔ values; server/ and scripts/ read
 * and write the file. Every replica must load the same file: the cluster id, which every signature
 * covers, is derived from the keys and the slot clock, so mismatched files fail loudly.
 *
 * ```json
 * { "version": 1, "devSingleReplica": false,
 *   "replicas": [ {"id": 0, "host": "127.0.0.1", "peerPort": 10000, "clientPort": 20000,
 *                  "httpPort": 30000, "publicKey": "<hex>"}, ... ],
 *   "protocol": { "commitRule": "3-chain", "genesisUs": ..., "slotUs": ..., ... },
 *   "tls": { "ca": "-----BEGIN CERTIFICATE-----\n..." },
 *   "clientKeys": ["<hex>", ...] }
 * ```
 *
 * `tls` (optional) means every replica serves wss:// on its peer and client ports; `ca` is the
 * PEM of the certificate authority that signed the replicas' certificates, which peers and
 * clients verify against (absent: the platform's trusted roots). Each replica's own certificate
 * and key are files beside its secret key (server/conf.ts), not in this shared file.
 *
 * `clientKeys` is optional: without it any client key may submit (open, as experiments need); with
 * it only those keys may (replicas refuse the rest: RefusalReason.NotAllowed). It does not enter the
 * cluster id, so it can change without re-keying; replicas with different lists refuse differently.
 */
import { assert } from './assert.js';
import { fromHex, toHex, utf8 } from './bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, type CryptoBackend, type KeyPair, type PublicKeyHandle } from './crypto/types.js';
import { ok, type Result } from './errors.js';
import { replicaId, type Digest, type ReplicaId } from './ids.js';
import { describeJsonType, fieldPath, parseJsonText, Problems, readBoolean, readHex, readInteger, readObject, readString } from './json-input.js';
import { MAX_REPLICAS } from './limits.js';
import { DEFAULT_PROTOCOL, protocolConfigToJson, readProtocolConfig, type ProtocolConfig } from './protocol-config.js';
import { clusterIdInput } from './signing.js';

export { COMMIT_RULES, DEFAULT_PROTOCOL, MIN_CHECKPOINT_INTERVAL_SLOTS, MIN_SLOT_US, type CommitRule, type ProtocolConfig } from './protocol-config.js';

export const CLUSTER_CONFIG_VERSION = 1;

/** Smallest Byzantine-fault-tolerant cluster: n = 3f + 1 with f = 1. */
export const MIN_BFT_REPLICAS = 4;

/** Most client keys an allow-list holds: a lookup per batch is O(1) whatever its size, but the list
 *  is parsed by every replica and client at start; larger client populations use an open cluster
 *  with admission control, or a proxy of their own. */
export const MAX_ALLOWED_CLIENT_KEYS = 10_000;

/** A config of MAX_REPLICAS replicas is ~40 KB and a full allow-list ~700 KB; anything far larger
 *  is not a config. */
export const MAX_CLUSTER_CONFIG_CHARS = 1024 * 1024;

/** A CA bundle of a few PEM certificates is a few KB; this leaves room for a long chain. */
export const MAX_TLS_CA_CHARS = 64 * 1024;

/** Longest host name (RFC 1035: 253 characters in text form). */
export const MAX_HOST_CHARS = 253;

export const MIN_PORT = 1;
export const MAX_PORT = 65_535;

const WHAT = 'cluster config';

export interface ReplicaInfo {
  readonly id: ReplicaId;
  readonly host: string;
  /** Replica-to-replica WebSocket port. */
  readonly peerPort: number;
  /** Client WebSocket port. */
  readonly clientPort: number;
  /** HTTP status and metrics port. */
  readonly httpPort: number;
  readonly publicKey: Uint8Array;
  /** The public key parsed by the backend the config was loaded with, ready for verify(). */
  readonly key: PublicKeyHandle;
}

export interface ClusterTls {
  /** PEM certificate(s) of the authority peers and clients trust; null: the platform's roots. */
  readonly ca: string | null;
}

export interface ClusterConfig {
  /** In id order: replicas[i].id === i. */
  readonly replicas: readonly ReplicaInfo[];
  readonly n: number;
  /** Faults tolerated: ⌊(n − 1) / 3⌋. */
  readonly f: number;
  /** Quorum: n − f. */
  readonly q: number;
  /** SHA-256 of clusterIdInput(public keys in id order, genesisUs, slotUs); in every signature. */
  readonly clusterId: Digest;
  readonly protocol: ProtocolConfig;
  /** A single replica for development: n = 1, f = 0, q = 1. Tolerates no fault. */
  readonly devSingleReplica: boolean;
  /** Present: replicas serve wss:// (absent in configs built before TLS existed, and without it). */
  readonly tls?: ClusterTls;
  /** Lowercase hex of the client keys that may submit; null: any key may (clientAllowed). */
  readonly clientKeys: ReadonlySet<string> | null;
}

/** True if the cluster lets `keyHex` (a client key in lowercase hex) submit. */
export const clientAllowed = (config: ClusterConfig, keyHex: string): boolean => config.clientKeys === null || config.clientKeys.has(keyHex);

export const faultsTolerated = (n: number): number => Math.floor((n - 1) / 3);
export const quorumSize = (n: number): number => n - faultsTolerated(n);

const TOP_FIELDS = ['version', 'replicas', 'protocol'] as const;
const TOP_OPTIONAL_FIELDS = ['devSingleReplica', 'tls', 'clientKeys'] as const;
const REPLICA_FIELDS = ['id', 'host', 'peerPort', 'clientPort', 'httpPort', 'publicKey'] as const;
const PORT_FIELDS = ['peerPort', 'clientPort', 'httpPort'] as const;

/** Parses and validates cluster.json. Never throws: every problem is listed in one InvalidConfig error. */
export function parseClusterConfig(text: string, backend: CryptoBackend): Result<ClusterConfig> {
  const parsed = parseJsonText(text, WHAT, MAX_CLUSTER_CONFIG_CHARS);
  if (!parsed.ok) return parsed;
  return buildClusterConfig(parsed.value, backend);
}

/** Validates a config object shaped like the file (e.g. from JSON.parse). Never throws. */
export function buildClusterConfig(input: unknown, backend: CryptoBackend): Result<ClusterConfig> {
  const problems = new Problems(WHAT);
  const top = readObject(input, '', TOP_FIELDS, TOP_OPTIONAL_FIELDS, problems);
  if (top === undefined) return problems.toError();
  readInteger(top, 'version', '', CLUSTER_CONFIG_VERSION, CLUSTER_CONFIG_VERSION, problems);
  const devSingleReplica = readBoolean(top, 'devSingleReplica', '', problems) ?? false;
  const protocol = Object.hasOwn(top, 'protocol') ? readProtocolConfig(top['protocol'], 'protocol', problems) : undefined;
  const replicas = Object.hasOwn(top, 'replicas') ? readReplicas(top['replicas'], devSingleReplica, backend, problems) : undefined;
  const tls = Object.hasOwn(top, 'tls') ? readTls(top['tls'], problems) : undefined;
  const clientKeys = Object.hasOwn(top, 'clientKeys') ? readClientKeys(top['clientKeys'], problems) : null;
  if (protocol === undefined || replicas === undefined || !problems.empty) return problems.toError();
  const n = replicas.length;
  const clusterId = backend.sha256(clusterIdInput(replicas.map((r) => r.publicKey), protocol.genesisUs, protocol.slotUs));
  return ok({ replicas, n, f: faultsTolerated(n), q: quorumSize(n), clusterId, protocol, devSingleReplica, clientKeys, ...(tls === undefined ? {} : { tls }) });
}

function readTls(value: unknown, problems: Problems): ClusterTls | undefined {
  const obj = readObject(value, 'tls', [], ['ca'], problems);
  if (obj === undefined) return undefined;
  const ca = readString(obj, 'ca', 'tls', MAX_TLS_CA_CHARS, problems);
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) problems.add('tls.ca must hold PEM certificates (-----BEGIN CERTIFICATE-----)');
  return { ca: ca ?? null };
}

/** The allow-list: hex keys of 32 bytes, no duplicates. The keys are not parsed as curve points
 *  here (that costs ~1 ms each); a key that is not one can never sign, so it admits nobody. */
function readClientKeys(value: unknown, problems: Problems): ReadonlySet<string> | null {
  if (!Array.isArray(value)) {
    problems.add(`clientKeys must be an array of hex strings, got ${describeJsonType(value)}`);
    return null;
  }
  if (value.length > MAX_ALLOWED_CLIENT_KEYS) {
    problems.add(`clientKeys holds ${value.length} keys, at most ${MAX_ALLOWED_CLIENT_KEYS} are allowed`);
    return null;
  }
  const keys = new Set<string>();
  value.forEach((entry, i) => {
    const bytes = typeof entry === 'string' ? fromHex(entry) : null;
    if (bytes === null || bytes.length !== ED25519_PUBLIC_KEY_BYTES) {
      problems.add(`clientKeys[${i}] must be ${ED25519_PUBLIC_KEY_BYTES} bytes of hex (${2 * ED25519_PUBLIC_KEY_BYTES} characters)`);
      return;
    }
    const hex = toHex(bytes);
    if (keys.has(hex)) problems.add(`clientKeys[${i}] repeats an earlier key`);
    keys.add(hex);
  });
  return keys;
}

function readReplicas(value: unknown, devSingleReplica: boolean, backend: CryptoBackend, problems: Problems): ReplicaInfo[] | undefined {
  if (!Array.isArray(value)) {
    problems.add(`replicas must be an array, got ${value === null ? 'null' : typeof value}`);
    return undefined;
  }
  const n = value.length;
  if (devSingleReplica && n !== 1) {
    problems.add(`devSingleReplica is true, so replicas must hold exactly 1 replica, got ${n}`);
    return undefined;
  }
  if (!devSingleReplica && n < MIN_BFT_REPLICAS) {
    problems.add(
      `replicas must hold at least ${MIN_BFT_REPLICAS} replicas, got ${n} (tolerating f faults takes n ≥ 3f + 1, f ≥ 1); ` +
        'set "devSingleReplica": true for a one-replica development cluster',
    );
    return undefined;
  }
  if (n > MAX_REPLICAS) {
    problems.add(`replicas must hold at most ${MAX_REPLICAS} replicas, got ${n}`);
    return undefined;
  }
  const out: ReplicaInfo[] = [];
  const endpointOwners = new Map<string, string>();
  const keyOwners = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const replica = readReplica(value[i], i, backend, problems);
    if (replica === undefined) continue;
    const path = `replicas[${i}]`;
    for (const port of PORT_FIELDS) {
      // Host names compare case-insensitively; aliases (localhost vs 127.0.0.1) are not resolved.
      const endpoint = `${replica.host.toLowerCase()}:${replica[port]}`;
      const owner = endpointOwners.get(endpoint);
      if (owner !== undefined) problems.add(`${fieldPath(path, port)}: ${endpoint} is already used by ${owner}`);
      else endpointOwners.set(endpoint, fieldPath(path, port));
    }
    const keyHex = toHex(replica.publicKey);
    const keyOwner = keyOwners.get(keyHex);
    if (keyOwner !== undefined) problems.add(`${path}.publicKey is the same key as ${keyOwner}; every replica needs its own key`);
    else keyOwners.set(keyHex, `${path}.publicKey`);
    out.push(replica);
  }
  return out.length === n ? out : undefined;
}

function readReplica(value: unknown, index: number, backend: CryptoBackend, problems: Problems): ReplicaInfo | undefined {
  const path = `replicas[${index}]`;
  const obj = readObject(value, path, REPLICA_FIELDS, [], problems);
  if (obj === undefined) return undefined;
  const id = readInteger(obj, 'id', path, 0, MAX_REPLICAS - 1, problems);
  if (id !== undefined && id !== index) problems.add(`${path}.id must be ${index} (ids are 0..n-1 in order), got ${id}`);
  const host = readString(obj, 'host', path, MAX_HOST_CHARS, problems);
  if (host !== undefined && /\s/.test(host)) problems.add(`${path}.host must not contain whitespace, got ${JSON.stringify(host)}`);
  const peerPort = readInteger(obj, 'peerPort', path, MIN_PORT, MAX_PORT, problems);
  const clientPort = readInteger(obj, 'clientPort', path, MIN_PORT, MAX_PORT, problems);
  const httpPort = readInteger(obj, 'httpPort', path, MIN_PORT, MAX_PORT, problems);
  const publicKey = readHex(obj, 'publicKey', path, ED25519_PUBLIC_KEY_BYTES, problems);
  const key = publicKey === undefined ? null : backend.parsePublicKey(publicKey);
  if (publicKey !== undefined && key === null) {
    problems.add(`${path}.publicKey is not a valid Ed25519 public key (it must encode a point of the prime-order subgroup canonically)`);
  }
  if (id !== index || host === undefined || /\s/.test(host)) return undefined;
  if (peerPort === undefined || clientPort === undefined || httpPort === undefined || publicKey === undefined || key === null) {
    return undefined;
  }
  return { id: replicaId(id), host, peerPort, clientPort, httpPort, publicKey, key };
}

/** The `tls` field as the file holds it (none when TLS is off). */
function tlsJson(tls: ClusterTls | undefined): { tls?: { ca?: string } } {
  if (tls === undefined) return {};
  return { tls: tls.ca === null ? {} : { ca: tls.ca } };
}

/** The config as cluster.json text (2-space indented, fields in file order); parses back to an equal config. */
export function formatClusterConfig(config: ClusterConfig): string {
  const json = {
    version: CLUSTER_CONFIG_VERSION,
    devSingleReplica: config.devSingleReplica,
    replicas: config.replicas.map((r) => ({
      id: r.id,
      host: r.host,
      peerPort: r.peerPort,
      clientPort: r.clientPort,
      httpPort: r.httpPort,
      publicKey: toHex(r.publicKey),
    })),
    protocol: protocolConfigToJson(config.protocol),
    ...tlsJson(config.tls),
    ...(config.clientKeys === null ? {} : { clientKeys: [...config.clientKeys] }),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

export interface GenerateClusterOptions {
  readonly n: number;
  /** Replica i runs on hosts[i % hosts.length]. Default: ['127.0.0.1']. */
  readonly hosts?: readonly string[];
  /** Replica i listens on base + i for each port kind (as Pompe-HS does per IP). Defaults: 10000, 20000, 30000. */
  readonly basePeerPort?: number;
  readonly baseClientPort?: number;
  readonly baseHttpPort?: number;
  /** Fields that differ from DEFAULT_PROTOCOL (set genesisUs for a real cluster). */
  readonly protocol?: Partial<ProtocolConfig>;
  readonly devSingleReplica?: boolean;
  /**
   * Derive the keys from this string instead of the platform's randomness, so a test or a
   * simulation gets the same cluster every run. Anyone who knows the string has the keys:
   * never use it for a real cluster.
   */
  readonly keySeed?: string;
  /**
   * The replicas' public keys, made where each replica runs (`pompe keygen`): no key pair is
   * generated, and GeneratedCluster.keyPairs is empty. One per replica, in id order.
   */
  readonly publicKeys?: readonly Uint8Array[];
  readonly tls?: ClusterTls;
  /** The allow-list of client keys; omitted: any client key may submit. */
  readonly clientKeys?: readonly Uint8Array[];
}

export interface GeneratedCluster {
  readonly config: ClusterConfig;
  /** keyPairs[i] belongs to replica i; empty when the public keys were given. */
  readonly keyPairs: readonly KeyPair[];
}

export const DEFAULT_BASE_PEER_PORT = 10_000;
export const DEFAULT_BASE_CLIENT_PORT = 20_000;
export const DEFAULT_BASE_HTTP_PORT = 30_000;

/** The secret key a keySeed gives replica i. */
export function seededSecretKey(keySeed: string, replica: number, backend: CryptoBackend): Uint8Array {
  return backend.sha256(utf8(`pompe/test-key/v1/${keySeed}/${replica}`));
}

/**
 * A whole cluster with fresh keys (or the public keys given), validated exactly as a loaded file is. For tools that take n,
 * hosts or ports from a user: bad values come back as an InvalidConfig error.
 */
export function tryGenerateCluster(options: GenerateClusterOptions, backend: CryptoBackend): Result<GeneratedCluster> {
  const problems = new Problems('cluster options');
  const { n } = options;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_REPLICAS) problems.add(`n must be an integer from 1 to ${MAX_REPLICAS}, got ${n}`);
  const hosts = options.hosts ?? ['127.0.0.1'];
  if (hosts.length === 0) problems.add('hosts must list at least one host');
  const given = options.publicKeys;
  if (given !== undefined && given.length !== n) problems.add(`${given.length} public keys were given for ${n} replicas: give one per replica, in id order`);
  if (!problems.empty) return problems.toError();
  const keyPairs: KeyPair[] = [];
  for (let i = 0; i < n && given === undefined; i++) {
    if (options.keySeed === undefined) {
      keyPairs.push(backend.generateKeyPair());
    } else {
      const secretKey = seededSecretKey(options.keySeed, i, backend);
      keyPairs.push({ secretKey, publicKey: backend.signer(secretKey).publicKey });
    }
  }
  const input = {
    version: CLUSTER_CONFIG_VERSION,
    devSingleReplica: options.devSingleReplica ?? false,
    replicas: (given ?? keyPairs.map((k) => k.publicKey)).map((publicKey, i) => ({
      id: i,
      host: hosts[i % hosts.length],
      peerPort: (options.basePeerPort ?? DEFAULT_BASE_PEER_PORT) + i,
      clientPort: (options.baseClientPort ?? DEFAULT_BASE_CLIENT_PORT) + i,
      httpPort: (options.baseHttpPort ?? DEFAULT_BASE_HTTP_PORT) + i,
      publicKey: toHex(publicKey),
    })),
    protocol: protocolConfigToJson({ ...DEFAULT_PROTOCOL, ...options.protocol }),
    ...tlsJson(options.tls),
    ...(options.clientKeys === undefined ? {} : { clientKeys: options.clientKeys.map(toHex) }),
  };
  const config = buildClusterConfig(input, backend);
  if (!config.ok) return config;
  return ok({ config: config.value, keyPairs });
}

/** tryGenerateCluster for tests and code whose options are known to be valid: asserts instead. */
export function generateCluster(options: GenerateClusterOptions, backend: CryptoBackend): GeneratedCluster {
  const result = tryGenerateCluster(options, backend);
  assert(result.ok, result.ok ? '' : result.error.message);
  return result.value;
}
