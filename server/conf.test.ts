import { copyFile, chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseClusterConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { parseClientKeyFile, parseSecretFile } from '../common/keys.js';
import { toHex } from '../common/bytes.js';
import { CLUSTER_FILE, ConfError, loadReplicaConf, readStoreMarker, secretFileName, tlsCertFileName, tlsKeyFileName, writeStoreMarker } from './conf.js';
import { clientKeygen, genConf, keygen, LOOPBACK_PROTOCOL, readClientKeys } from './genConf.js';
import { tempDir } from './store/testFixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dir(): Promise<string> {
  const d = await tempDir('conf');
  cleanups.push(d.cleanup);
  return d.path;
}

describe('gen-conf', () => {
  it('writes the cluster, secret files (0600) and host files, with loopback defaults and genesis now', async () => {
    const out = join(await dir(), 'conf');
    const before = Date.now() * 1000;
    await genConf({ replicas: 4, out, hosts: ['10.0.0.1', '10.0.0.2'], clientHosts: ['10.0.1.1', '10.0.1.2'], basePeerPort: 11_000 }, nodeCrypto);
    const config = parseClusterConfig(await readFile(join(out, CLUSTER_FILE), 'utf8'), nodeCrypto);
    expect(config.ok).toBe(true);
    if (!config.ok) return;
    const c = config.value;
    expect(c.n).toBe(4);
    expect(c.replicas.map((r) => `${r.host}:${r.peerPort}`)).toEqual(['10.0.0.1:11000', '10.0.0.2:11001', '10.0.0.1:11002', '10.0.0.2:11003']);
    expect(c.protocol).toMatchObject(LOOPBACK_PROTOCOL);
    expect(c.protocol.genesisUs).toBeGreaterThanOrEqual(before);
    expect(await readFile(join(out, 'server.hosts'), 'utf8')).toBe('10.0.0.1\n10.0.0.2\n10.0.0.1\n10.0.0.2\n');
    expect(await readFile(join(out, 'client.hosts'), 'utf8')).toBe('10.0.1.1\n10.0.1.2\n');
    for (let i = 0; i < 4; i++) {
      expect((await stat(join(out, secretFileName(i)))).mode & 0o777).toBe(0o600);
      const conf = await loadReplicaConf(out, i, nodeCrypto);
      expect(conf.self).toBe(i);
      expect(conf.tls).toBeNull();
    }
  });

  it('warns when many replicas share a host and Δ was left at its default, not when Δ was chosen', async () => {
    const crowded = await genConf({ replicas: 7, out: await dir() }, nodeCrypto);
    expect(crowded.warnings.join()).toMatch(/7 replicas share each host.*--delta-us/);
    expect((await genConf({ replicas: 7, out: await dir(), deltaUs: 200_000 }, nodeCrypto)).warnings).toEqual([]);
    expect((await genConf({ replicas: 7, out: await dir(), hosts: ['10.0.0.1', '10.0.0.2'] }, nodeCrypto)).warnings).toEqual([]);
    expect((await genConf({ replicas: 4, out: await dir() }, nodeCrypto)).warnings).toEqual([]);
  });

  it('takes protocol overrides and refuses invalid ones with every problem listed', async () => {
    const out = await dir();
    await genConf({ replicas: 4, out, commitRule: '3-chain', slotUs: 5_000, deltaUs: 20_000 }, nodeCrypto);
    const c = (await loadReplicaConf(out, 0, nodeCrypto)).config;
    expect(c.protocol).toMatchObject({ commitRule: '3-chain', slotUs: 5_000, deltaUs: 20_000 });
    await expect(genConf({ replicas: 4, out: await dir(), slotUs: 10_000, deltaUs: 5_000 }, nodeCrypto)).rejects.toThrow(/deltaUs/);
    await expect(genConf({ replicas: 3, out: await dir() }, nodeCrypto)).rejects.toThrow(/at least 4 replicas/);
  });

  it('raises Δ with the slot when only the slot is given', async () => {
    const out = await dir();
    await genConf({ replicas: 4, out, slotUs: 50_000 }, nodeCrypto);
    expect((await loadReplicaConf(out, 0, nodeCrypto)).config.protocol.deltaUs).toBe(50_000);
  });

  it('does not overwrite a configuration without force', async () => {
    const out = await dir();
    await genConf({ replicas: 4, out }, nodeCrypto);
    await expect(genConf({ replicas: 4, out }, nodeCrypto)).rejects.toThrow(/--force/);
    await genConf({ replicas: 4, out, force: true }, nodeCrypto);
  });

  it('keygen writes a key file that parses back to the printed public key', async () => {
    const file = join(await dir(), 'k.json');
    const publicKey = await keygen(file, 5, false, nodeCrypto);
    const parsed = parseSecretFile(await readFile(file, 'utf8'), nodeCrypto);
    expect(parsed.ok && parsed.value.replica === 5 && Buffer.from(parsed.value.keyPair.publicKey).equals(Buffer.from(publicKey))).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(keygen(file, 5, false, nodeCrypto)).rejects.toThrow(ConfError);
  });

  it('builds a cluster from public keys made elsewhere, and a --force run removes only secrets the new cluster does not name', async () => {
    const hosts = await dir();
    const keys = [];
    for (let i = 0; i < 4; i++) keys.push(await keygen(join(hosts, `replica-${i}.secret.json`), i, false, nodeCrypto));
    const out = await dir();
    await genConf({ replicas: 4, out, tls: true }, nodeCrypto); // an earlier cluster, with its secrets and TLS files
    await copyFile(join(hosts, secretFileName(1)), join(out, secretFileName(1))); // a host-made key that stays right
    const result = await genConf({ replicas: 4, out, publicKeys: keys, force: true }, nodeCrypto);
    expect(result.files.map((f) => f.slice(out.length + 1)).sort()).toEqual(['client.hosts', 'cluster.json', 'server.hosts']);
    expect((await readdir(out)).sort()).toEqual(['client.hosts', 'cluster.json', secretFileName(1), 'server.hosts']);
    expect((await loadReplicaConf(out, 1, nodeCrypto)).self).toBe(1);
    await expect(loadReplicaConf(out, 0, nodeCrypto)).rejects.toMatchObject({ problem: 'missing' });
  });

  it('--tls: a certificate and key per replica that load, and refusals for a key or certificate that does not fit', async () => {
    const out = await dir();
    await genConf({ replicas: 4, out, hosts: ['127.0.0.1', 'replica-b.example'], tls: true }, nodeCrypto);
    const json = JSON.parse(await readFile(join(out, CLUSTER_FILE), 'utf8')) as { tls: { ca: string } };
    expect(json.tls.ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
    for (let i = 0; i < 4; i++) {
      expect((await stat(join(out, tlsKeyFileName(i)))).mode & 0o777).toBe(0o600);
      const conf = await loadReplicaConf(out, i, nodeCrypto);
      expect(conf.config.tls?.ca).toBe(json.tls.ca);
      expect(conf.tls?.certFile).toBe(join(out, tlsCertFileName(i)));
    }
    // Replica 1's certificate names replica-b.example, not 127.0.0.1.
    await expect(loadReplicaConf(out, 0, nodeCrypto, { tlsCertFile: join(out, tlsCertFileName(1)), tlsKeyFile: join(out, tlsKeyFileName(1)) })).rejects.toThrow(
      /does not name replica 0's host 127.0.0.1/,
    );
    await expect(loadReplicaConf(out, 0, nodeCrypto, { tlsKeyFile: join(out, tlsKeyFileName(2)) })).rejects.toThrow(/is not the key of the certificate/);
    const other = await dir();
    await genConf({ replicas: 4, out: other, tls: true }, nodeCrypto);
    await expect(loadReplicaConf(out, 0, nodeCrypto, { tlsCertFile: join(other, tlsCertFileName(0)), tlsKeyFile: join(other, tlsKeyFileName(0)) })).rejects.toThrow(
      /not signed by the CA in cluster.json/,
    );
    await chmod(join(out, tlsKeyFileName(3)), 0o644);
    await expect(loadReplicaConf(out, 3, nodeCrypto)).rejects.toMatchObject({ problem: 'insecure' });
  });

  it('writes an allow-list from a directory of client key files or a file of public keys', async () => {
    const keys = await dir();
    const a = await clientKeygen(join(keys, 'alice.json'), false, nodeCrypto);
    const b = await clientKeygen(join(keys, 'bob.json'), false, nodeCrypto);
    const parsed = parseClientKeyFile(await readFile(join(keys, 'alice.json'), 'utf8'), nodeCrypto);
    expect(parsed.ok && toHex(parsed.value.publicKey)).toBe(toHex(a));
    expect((await readClientKeys(keys, nodeCrypto)).map(toHex)).toEqual([toHex(a), toHex(b)]);

    const list = join(await dir(), 'keys.txt');
    await writeFile(list, `# the team\n${toHex(b)}\n\n${toHex(a)}\n`);
    const fromFile = await readClientKeys(list, nodeCrypto);
    expect(fromFile.map(toHex)).toEqual([toHex(b), toHex(a)]);

    const out = await dir();
    await genConf({ replicas: 4, out, clientKeys: fromFile }, nodeCrypto);
    const config = (await loadReplicaConf(out, 0, nodeCrypto)).config;
    expect([...config.clientKeys!].sort()).toEqual([toHex(a), toHex(b)].sort());

    await writeFile(list, 'not a key\n');
    await expect(readClientKeys(list, nodeCrypto)).rejects.toThrow(/entry 1 is not a 32-byte key in hex/);
  });
});

describe('loadReplicaConf', () => {
  it('names the file and the problem', async () => {
    const out = await dir();
    await expect(loadReplicaConf(out, 0, nodeCrypto)).rejects.toMatchObject({ problem: 'missing', path: join(out, CLUSTER_FILE) });
    await genConf({ replicas: 4, out }, nodeCrypto);
    await expect(loadReplicaConf(out, 4, nodeCrypto)).rejects.toThrow(/no replica 4/);
    // Replica 1's key file under replica 0's name.
    await writeFile(join(out, secretFileName(0)), await readFile(join(out, secretFileName(1))));
    await expect(loadReplicaConf(out, 0, nodeCrypto)).rejects.toThrow(/replica 1's key file/);
    await writeFile(join(out, CLUSTER_FILE), '{"version": 1}');
    await expect(loadReplicaConf(out, 0, nodeCrypto)).rejects.toMatchObject({ problem: 'invalid' });
  });

  it('finds a key from another gen-conf run, and refuses a secret file others can read', async () => {
    const a = await dir();
    const b = await dir();
    await genConf({ replicas: 4, out: a }, nodeCrypto);
    await genConf({ replicas: 4, out: b }, nodeCrypto);
    await writeFile(join(a, secretFileName(2)), await readFile(join(b, secretFileName(2))), { mode: 0o644 });
    await expect(loadReplicaConf(a, 2, nodeCrypto)).rejects.toThrow(/different gen-conf runs/);
    await chmod(join(b, secretFileName(3)), 0o640);
    await expect(loadReplicaConf(b, 3, nodeCrypto)).rejects.toMatchObject({ problem: 'insecure', message: /readable by group or others \(mode 640\); chmod 600/ });
    await chmod(join(b, secretFileName(3)), 0o600);
    expect((await loadReplicaConf(b, 3, nodeCrypto)).self).toBe(3);
  });
});

describe('the store marker', () => {
  it('round-trips, and a marker of another cluster counts as none', async () => {
    const a = await dir();
    await genConf({ replicas: 4, out: a }, nodeCrypto);
    const { config } = await loadReplicaConf(a, 1, nodeCrypto);
    expect(await readStoreMarker(a, 1, config)).toBeNull();
    await writeStoreMarker(a, 1, config, join(a, 'data'));
    expect(await readStoreMarker(a, 1, config)).toMatchObject({ replica: 1, dataDir: join(a, 'data') });
    await genConf({ replicas: 4, out: a, force: true }, nodeCrypto);
    const regenerated = (await loadReplicaConf(a, 1, nodeCrypto)).config;
    expect(await readStoreMarker(a, 1, regenerated)).toBeNull();
  });
});
