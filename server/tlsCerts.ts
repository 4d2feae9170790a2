/**
 * `gen-conf --tls`: a self-signed certificate authority for one cluster and a certificate per
 * replica, signed by it and naming the replica's host (an IP address or a DNS name), for test and
 * private clusters. Built with @peculiar/x509 on Node's WebCrypto (ECDSA P-256 with SHA-256: small
 * keys, fast handshakes), so nothing shells out to openssl.
 *
 * The CA's private key is never written: once the replicas' certificates are signed, nobody can
 * mint another certificate that peers and clients would trust. Regenerate the conf to add one.
 * Clusters with certificates from the operator's own CA put its PEM in cluster.json's tls.ca and
 * each replica's files beside its key (server/conf.ts).
 */
// @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

/** Test certificates: long enough that a test cluster never sees them expire. */
export const TLS_CERT_VALIDITY_DAYS = 3650;
/** Certificates start an hour early, so a host whose clock is a little behind accepts them. */
const CLOCK_SKEW_ALLOWANCE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface ReplicaCertificate {
  readonly certPem: string;
  /** PKCS #8 PEM: a secret, written mode 0600. */
  readonly keyPem: string;
}

export interface ClusterCertificates {
  readonly caPem: string;
  /** In replica id order. */
  readonly replicas: readonly ReplicaCertificate[];
}

/** X.500 names take a few special characters as syntax: keep only what a name needs. */
function safeName(text: string): string {
  return text.replace(/[^\w.:-]/g, '_');
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/**
 * A CA named after `clusterLabel` and, for each entry of `hosts` (replica i runs on hosts[i]), a
 * certificate for that host valid for both TLS server and client use.
 */
export async function makeClusterCertificates(hosts: readonly string[], clusterLabel: string, nowMs: number): Promise<ClusterCertificates> {
  x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);
  const notBefore = new Date(nowMs - CLOCK_SKEW_ALLOWANCE_MS);
  const notAfter = new Date(nowMs + TLS_CERT_VALIDITY_DAYS * DAY_MS);
  const caKeys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const caName = `CN=pompe-ts cluster CA ${safeName(clusterLabel)}`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const replicas: ReplicaCertificate[] = [];
  for (const [id, host] of hosts.entries()) {
    const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      subject: `CN=pompe-ts replica ${id} ${safeName(host)}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: isIP(host) === 0 ? 'dns' : 'ip', value: host }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      ],
    });
    replicas.push({ certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey) });
  }
  return { caPem: ca.toString('pem'), replicas };
}
