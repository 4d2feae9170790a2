import { describe, expect, it } from 'vitest';
import { AssertionError } from './assert.js';
import { toHex } from './bytes.js';
import {
  buildClusterConfig,
  clientAllowed,
  DEFAULT_PROTOCOL,
  faultsTolerated,
  formatClusterConfig,
  generateCluster,
  MAX_ALLOWED_CLIENT_KEYS,
  parseClusterConfig,
  quorumSize,
  tryGenerateCluster,
  type ClusterConfig,
} from './config.js';
import { nobleCrypto, nodeCrypto } from './crypto/index.js';
import { ErrorCode } from './errors.js';
import { MAX_BATCH_BYTES, MAX_BATCH_LIFETIME_US, MAX_REPLICAS } from './limits.js';
import { clusterIdInput } from './signing.js';

const backend = nodeCrypto;

/** A valid cluster.json as a mutable object, for tests to break one field at a time. */
type Json = Record<string, unknown> & { replicas: Record<string, unknown>[]; protocol: Record<string, unknown> };
function validJson(n = 4): Json {
  const { config } = generateCluster({ n, keySeed: 'config-test', protocol: { genesisUs: 1_700_000_000_000_000 } }, backend);
  return JSON.parse(formatClusterConfig(config)) as Json;
}

function expectInvalid(input: unknown, pattern: RegExp): string {
  const result = buildClusterConfig(input, backend);
  expect(result.ok).toBe(false);
  if (result.ok) return '';
  expect(result.error.code).toBe(ErrorCode.InvalidConfig);
  expect(result.error.message).toMatch(/^invalid cluster config: /);
  expect(result.error.message).toMatch(pattern);
  return result.error.message;
}

function expectValid(input: unknown): ClusterConfig {
  const result = buildClusterConfig(input, backend);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

describe('cluster size', () => {
  it.each([
    [4, 1, 3],
    [7, 2, 5],
    [10, 3, 7],
    [16, 5, 11],
  ])('n = %i gives f = %i and q = %i', (n, f, q) => {
    expect(faultsTolerated(n)).toBe(f);
    expect(quorumSize(n)).toBe(q);
    const config = expectValid(validJson(n));
    expect({ n: config.n, f: config.f, q: config.q }).toEqual({ n, f, q });
  });

  it('refuses n = 3 without dev mode, and says how to get one replica', () => {
    const json = validJson();
    json.replicas.pop();
    expectInvalid(json, /replicas must hold at least 4 replicas, got 3 \(tolerating f faults takes n ≥ 3f \+ 1, f ≥ 1\); set "devSingleReplica": true/);
  });

  it('accepts a single replica in dev mode (f = 0, q = 1), and only then', () => {
    const json = validJson();
    json.replicas = json.replicas.slice(0, 1);
    expectInvalid(json, /at least 4 replicas, got 1/);
    json['devSingleReplica'] = true;
    const config = expectValid(json);
    expect({ n: config.n, f: config.f, q: config.q, dev: config.devSingleReplica }).toEqual({ n: 1, f: 0, q: 1, dev: true });
    expectInvalid({ ...validJson(), devSingleReplica: true }, /devSingleReplica is true, so replicas must hold exactly 1 replica, got 4/);
  });

  it(`refuses more than ${MAX_REPLICAS} replicas`, () => {
    const json = validJson();
    json.replicas = Array.from({ length: MAX_REPLICAS + 1 }, () => json.replicas[0]!);
    expectInvalid(json, /at most 128 replicas, got 129/);
  });
});

describe('replicas', () => {
  it('need ids 0..n-1 in order', () => {
    const duplicate = validJson();
    duplicate.replicas[2]!['id'] = 1;
    expectInvalid(duplicate, /replicas\[2\]\.id must be 2 \(ids are 0\.\.n-1 in order\), got 1/);
    const swapped = validJson();
    [swapped.replicas[0], swapped.replicas[1]] = [swapped.replicas[1]!, swapped.replicas[0]!];
    expectInvalid(swapped, /replicas\[0\]\.id must be 0.*got 1/);
  });

  it('need distinct (host, port) pairs across every port of every replica', () => {
    const json = validJson();
    json.replicas[1]!['peerPort'] = json.replicas[0]!['clientPort'];
    expectInvalid(json, /replicas\[1\]\.peerPort: 127\.0\.0\.1:20000 is already used by replicas\[0\]\.clientPort/);
    const own = validJson();
    own.replicas[3]!['httpPort'] = own.replicas[3]!['peerPort'];
    expectInvalid(own, /replicas\[3\]\.httpPort: 127\.0\.0\.1:10003 is already used by replicas\[3\]\.peerPort/);
    const caseOnly = validJson();
    caseOnly.replicas[0]!['host'] = 'HOST-A';
    caseOnly.replicas[1]!['host'] = 'host-a';
    caseOnly.replicas[1]!['peerPort'] = caseOnly.replicas[0]!['peerPort'];
    expectInvalid(caseOnly, /replicas\[1\]\.peerPort: host-a:10000 is already used by replicas\[0\]\.peerPort/);
  });

  it('may share a port number on different hosts', () => {
    const json = validJson();
    json.replicas.forEach((r, i) => {
      r['host'] = `10.0.0.${i + 1}`;
      r['peerPort'] = 9000;
      r['clientPort'] = 9001;
      r['httpPort'] = 9002;
    });
    expect(expectValid(json).replicas.map((r) => `${r.host}:${r.peerPort}`)).toEqual(['10.0.0.1:9000', '10.0.0.2:9000', '10.0.0.3:9000', '10.0.0.4:9000']);
  });

  it('need ports in 1..65535 and a host', () => {
    const json = validJson();
    json.replicas[0]!['peerPort'] = 0;
    json.replicas[1]!['clientPort'] = 65_536;
    json.replicas[2]!['httpPort'] = '30002';
    json.replicas[3]!['host'] = '';
    const message = expectInvalid(json, /replicas\[0\]\.peerPort must be between 1 and 65535, got 0/);
    expect(message).toMatch(/replicas\[1\]\.clientPort must be between 1 and 65535, got 65536/);
    expect(message).toMatch(/replicas\[2\]\.httpPort must be an integer, got string "30002"/);
    expect(message).toMatch(/replicas\[3\]\.host must be 1 to 253 characters, got 0/);
    const spaced = validJson();
    spaced.replicas[0]!['host'] = 'host a';
    expectInvalid(spaced, /replicas\[0\]\.host must not contain whitespace/);
  });

  it('need well-formed, valid, distinct public keys', () => {
    const badHex = validJson();
    badHex.replicas[1]!['publicKey'] = 'zz'.repeat(32);
    expectInvalid(badHex, /replicas\[1\]\.publicKey is not valid hex/);
    const short = validJson();
    short.replicas[1]!['publicKey'] = 'ab'.repeat(31);
    expectInvalid(short, /replicas\[1\]\.publicKey must be 32 bytes \(64 hex characters\), got 31 bytes/);
    const smallOrder = validJson();
    smallOrder.replicas[2]!['publicKey'] = `01${'00'.repeat(31)}`; // the identity point
    expectInvalid(smallOrder, /replicas\[2\]\.publicKey is not a valid Ed25519 public key/);
    const offCurve = validJson();
    offCurve.replicas[2]!['publicKey'] = `02${'00'.repeat(31)}`;
    expectInvalid(offCurve, /replicas\[2\]\.publicKey is not a valid Ed25519 public key/);
    const duplicate = validJson();
    duplicate.replicas[3]!['publicKey'] = duplicate.replicas[0]!['publicKey'];
    expectInvalid(duplicate, /replicas\[3\]\.publicKey is the same key as replicas\[0\]\.publicKey/);
  });
});

describe('unknown and missing fields', () => {
  it('rejects an unknown field at every level, naming it', () => {
    expectInvalid({ ...validJson(), extra: 1 }, /extra is not a known field \(known: version, replicas, protocol, devSingleReplica, tls, clientKeys\)/);
    const replica = validJson();
    replica.replicas[1]!['peerport'] = 1;
    expectInvalid(replica, /replicas\[1\]\.peerport is not a known field/);
    const protocol = validJson();
    protocol.protocol['slotUS'] = 5000;
    expectInvalid(protocol, /protocol\.slotUS is not a known field/);
  });

  it('rejects missing fields and a wrong version', () => {
    const json = validJson();
    delete json.protocol['deltaUs'];
    delete json.replicas[0]!['host'];
    const message = expectInvalid(json, /protocol\.deltaUs is missing/);
    expect(message).toMatch(/replicas\[0\]\.host is missing/);
    expectInvalid({ ...validJson(), version: 2 }, /version must be between 1 and 1, got 2/);
    const { version: _version, ...noVersion } = validJson();
    expectInvalid(noVersion, /version is missing/);
    expectInvalid({ ...validJson(), replicas: {} }, /replicas must be an array, got object/);
    expectInvalid({ ...validJson(), devSingleReplica: 'no' }, /devSingleReplica must be true or false, got string "no"/);
  });

  it('rejects text that is not JSON, and non-objects', () => {
    const result = parseClusterConfig('{"version": 1,', backend);
    expect(!result.ok && result.error.message).toMatch(/invalid cluster config: not valid JSON/);
    expectInvalid([], /the top level must be an object, got an array/);
    expectInvalid('cluster', /the top level must be an object, got string "cluster"/);
  });
});

describe('protocol', () => {
  const withProtocol = (fields: Record<string, unknown>): Json => {
    const json = validJson();
    Object.assign(json.protocol, fields);
    return json;
  };

  it('accepts the defaults', () => {
    expect(expectValid(withProtocol({ ...DEFAULT_PROTOCOL })).protocol).toEqual(DEFAULT_PROTOCOL);
    expect(DEFAULT_PROTOCOL.maxBatchBytes).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(DEFAULT_PROTOCOL.batchLifetimeUs).toBeLessThanOrEqual(MAX_BATCH_LIFETIME_US);
  });

  it('accepts both commit rules and nothing else', () => {
    expect(expectValid(withProtocol({ commitRule: '2-chain' })).protocol.commitRule).toBe('2-chain');
    expectInvalid(withProtocol({ commitRule: '4-chain' }), /protocol\.commitRule must be one of "2-chain", "3-chain", got string "4-chain"/);
  });

  it.each([
    [{ slotUs: 99 }, /protocol\.slotUs must be between 100 and/],
    [{ slotUs: 20_000, deltaUs: 10_000 }, /protocol\.deltaUs \(10000\) must be at least protocol\.slotUs \(20000\)/],
    [{ viewTimeoutMs: 5_000, maxViewTimeoutMs: 1_000 }, /protocol\.maxViewTimeoutMs \(1000\) must be at least protocol\.viewTimeoutMs \(5000\)/],
    [{ minBlockIntervalUs: 100_000, idleBlockIntervalUs: 50_000 }, /protocol\.idleBlockIntervalUs \(50000\) must be at least protocol\.minBlockIntervalUs/],
    [{ maxBatchBytes: MAX_BATCH_BYTES + 1 }, /protocol\.maxBatchBytes must be between 1 and 4194304, got 4194305/],
    [{ batchLifetimeUs: MAX_BATCH_LIFETIME_US + 1 }, /protocol\.batchLifetimeUs must be between 1 and 120000000/],
    [{ genesisUs: -1 }, /protocol\.genesisUs must be between 0 and/],
    [{ viewTimeoutMs: 0 }, /protocol\.viewTimeoutMs must be between 1 and/],
    [{ viewTimeoutMs: 2 ** 31 }, /protocol\.viewTimeoutMs must be between 1 and 2147483647/],
    [{ deltaUs: 1.5 }, /protocol\.deltaUs must be an integer, got number 1\.5/],
    [{ slotUs: '5000' }, /protocol\.slotUs must be an integer, got string "5000"/],
    [{ genesisUs: 2 ** 53 }, /protocol\.genesisUs must be an integer/],
    [{ checkpointIntervalSlots: 9 }, /protocol\.checkpointIntervalSlots must be between 10 and/],
  ])('rejects %j', (fields, pattern) => {
    expectInvalid(withProtocol(fields), pattern);
  });

  it('takes the default checkpoint interval when a cluster.json written before it leaves it out', () => {
    const json = validJson();
    delete json.protocol['checkpointIntervalSlots'];
    expect(expectValid(json).protocol.checkpointIntervalSlots).toBe(DEFAULT_PROTOCOL.checkpointIntervalSlots);
    expect(expectValid(withProtocol({ checkpointIntervalSlots: 50 })).protocol.checkpointIntervalSlots).toBe(50);
  });

  it('accepts genesis 0', () => {
    expect(expectValid(withProtocol({ genesisUs: 0 })).protocol.genesisUs).toBe(0);
  });
});

describe('round trip and cluster id', () => {
  it('format → parse gives the same config, under both backends', () => {
    const { config } = generateCluster({ n: 7, hosts: ['10.0.0.1', '10.0.0.2'], keySeed: 'round-trip', protocol: { commitRule: '2-chain', genesisUs: 123 } }, backend);
    const text = formatClusterConfig(config);
    for (const b of [nodeCrypto, nobleCrypto]) {
      const parsed = parseClusterConfig(text, b);
      if (!parsed.ok) throw new Error(parsed.error.message);
      expect(formatClusterConfig(parsed.value)).toBe(text);
      expect(toHex(parsed.value.clusterId)).toBe(toHex(config.clusterId));
      expect(parsed.value.protocol).toEqual(config.protocol);
      expect(parsed.value.replicas.map(({ key: _key, ...rest }) => rest)).toEqual(config.replicas.map(({ key: _key, ...rest }) => rest));
      expect(parsed.value.replicas.every((r) => toHex(r.key.raw) === toHex(r.publicKey))).toBe(true);
    }
  });

  it('the cluster id hashes the keys in id order, genesis and slot length, and nothing else', () => {
    const json = validJson();
    const config = expectValid(json);
    const expected = backend.sha256(clusterIdInput(config.replicas.map((r) => r.publicKey), config.protocol.genesisUs, config.protocol.slotUs));
    expect(toHex(config.clusterId)).toBe(toHex(expected));
    const other = (change: (j: Json) => void): string => {
      const copy = validJson();
      change(copy);
      return toHex(expectValid(copy).clusterId);
    };
    expect(other((j) => (j.protocol['genesisUs'] = 1))).not.toBe(toHex(expected));
    expect(other((j) => (j.protocol['slotUs'] = 6_000))).not.toBe(toHex(expected));
    expect(other((j) => (j.replicas[0]!['host'] = 'elsewhere'))).toBe(toHex(expected));
    expect(other((j) => (j.protocol['viewTimeoutMs'] = 2_000))).toBe(toHex(expected));
    expect(other((j) => (j['clientKeys'] = [toHex(new Uint8Array(32).fill(1))]))).toBe(toHex(expected));
  });
});

describe('client allow-list', () => {
  const hex = (fill: number): string => toHex(new Uint8Array(32).fill(fill));

  it('is open without clientKeys, and admits only the listed keys with it', () => {
    const open = expectValid(validJson());
    expect(open.clientKeys).toBeNull();
    expect(clientAllowed(open, hex(9))).toBe(true);
    const json = validJson();
    json['clientKeys'] = [hex(1), hex(2).toUpperCase()];
    const listed = expectValid(json);
    expect(clientAllowed(listed, hex(1))).toBe(true);
    expect(clientAllowed(listed, hex(2))).toBe(true);
    expect(clientAllowed(listed, hex(3))).toBe(false);
  });

  it('round-trips through the file, and from generateCluster', () => {
    const { config } = generateCluster({ n: 4, keySeed: 'allow', clientKeys: [new Uint8Array(32).fill(5)] }, backend);
    const text = formatClusterConfig(config);
    expect(JSON.parse(text)).toMatchObject({ clientKeys: [hex(5)] });
    const parsed = parseClusterConfig(text, backend);
    expect(parsed.ok && [...parsed.value.clientKeys!]).toEqual([hex(5)]);
    expect(JSON.parse(formatClusterConfig(expectValid(validJson())))).not.toHaveProperty('clientKeys');
  });

  it('refuses malformed, repeated and too many keys, naming the entry', () => {
    const withKeys = (keys: unknown): Json => ({ ...validJson(), clientKeys: keys });
    expectInvalid(withKeys('abc'), /clientKeys must be an array/);
    expectInvalid(withKeys([hex(1), 'zz']), /clientKeys\[1\] must be 32 bytes of hex/);
    expectInvalid(withKeys([hex(1).slice(2)]), /clientKeys\[0\]/);
    expectInvalid(withKeys([7]), /clientKeys\[0\]/);
    expectInvalid(withKeys([hex(1), hex(1)]), /clientKeys\[1\] repeats/);
    expectInvalid(withKeys(Array.from({ length: MAX_ALLOWED_CLIENT_KEYS + 1 }, (_, i) => hex(i % 256))), /at most 10000/);
  });
});

describe('generateCluster', () => {
  it('places replica i on hosts[i % hosts.length] with ports base + i', () => {
    const { config, keyPairs } = generateCluster({ n: 5, hosts: ['a', 'b'], basePeerPort: 7000, baseClientPort: 8000, baseHttpPort: 9000 }, backend);
    expect(config.replicas.map((r) => [r.id, r.host, r.peerPort, r.clientPort, r.httpPort])).toEqual([
      [0, 'a', 7000, 8000, 9000],
      [1, 'b', 7001, 8001, 9001],
      [2, 'a', 7002, 8002, 9002],
      [3, 'b', 7003, 8003, 9003],
      [4, 'a', 7004, 8004, 9004],
    ]);
    expect(keyPairs.map((k) => toHex(k.publicKey))).toEqual(config.replicas.map((r) => toHex(r.publicKey)));
    for (const [i, pair] of keyPairs.entries()) expect(toHex(backend.signer(pair.secretKey).publicKey)).toBe(toHex(config.replicas[i]!.publicKey));
  });

  it('defaults to loopback, ports 10000/20000/30000 and DEFAULT_PROTOCOL', () => {
    const { config } = generateCluster({ n: 4 }, nobleCrypto);
    expect(config.replicas[3]).toMatchObject({ host: '127.0.0.1', peerPort: 10_003, clientPort: 20_003, httpPort: 30_003 });
    expect(config.protocol).toEqual(DEFAULT_PROTOCOL);
    expect(config.devSingleReplica).toBe(false);
  });

  it('derives the same keys from the same keySeed, with either backend, and fresh keys without one', () => {
    const a = generateCluster({ n: 4, keySeed: 'seed' }, nodeCrypto);
    const b = generateCluster({ n: 4, keySeed: 'seed' }, nobleCrypto);
    const c = generateCluster({ n: 4, keySeed: 'other' }, nodeCrypto);
    expect(toHex(a.config.clusterId)).toBe(toHex(b.config.clusterId));
    expect(toHex(a.config.clusterId)).not.toBe(toHex(c.config.clusterId));
    const fresh = [generateCluster({ n: 4 }, nodeCrypto), generateCluster({ n: 4 }, nodeCrypto)];
    expect(toHex(fresh[0]!.config.clusterId)).not.toBe(toHex(fresh[1]!.config.clusterId));
  });

  it('makes a dev single-replica cluster', () => {
    const { config } = generateCluster({ n: 1, devSingleReplica: true }, backend);
    expect({ n: config.n, f: config.f, q: config.q }).toEqual({ n: 1, f: 0, q: 1 });
  });

  it('reports bad options as errors (tryGenerateCluster) or assertions (generateCluster)', () => {
    const tooFew = tryGenerateCluster({ n: 3 }, backend);
    expect(!tooFew.ok && tooFew.error.message).toMatch(/at least 4 replicas, got 3/);
    const overflow = tryGenerateCluster({ n: 4, basePeerPort: 65_534 }, backend);
    expect(!overflow.ok && overflow.error.message).toMatch(/replicas\[2\]\.peerPort must be between 1 and 65535, got 65536/);
    const noHosts = tryGenerateCluster({ n: 4, hosts: [] }, backend);
    expect(!noHosts.ok && noHosts.error.message).toMatch(/hosts must list at least one host/);
    const huge = tryGenerateCluster({ n: 1e9 }, backend);
    expect(!huge.ok && huge.error.message).toMatch(/n must be an integer from 1 to 128/);
    expect(() => generateCluster({ n: 2 }, backend)).toThrow(AssertionError);
    expect(() => generateCluster({ n: 4, protocol: { slotUs: 10 } }, backend)).toThrow(/protocol\.slotUs must be between 100/);
  });
});
