import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A PEM file that cannot be read or does not hold what it should. */
export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PemError';
  }
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new PemError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Every certificate in a PEM file, parsed (at least one): a chain, or a CA bundle. */
export function readCertificates(path: string): { pem: string; certificates: X509Certificate[] } {
  const pem = read(path);
  const blocks = pem.match(CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new PemError(`${path} holds no PEM certificate`);
  const certificates = blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new PemError(`${path}: certificate ${i + 1} does not parse: ${(err as Error).message}`);
    }
  });
  return { pem, certificates };
}

/** An unencrypted private key in a PEM file (the trunk has nobody to ask for a passphrase). */
export function readPrivateKey(path: string): { pem: string; key: KeyObject } {
  const pem = read(path);
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch (err) {
    throw new PemError(`${path} holds no usable private key (PEM, unencrypted): ${(err as Error).message}`);
  }
}

/** A certificate chain and its key, checked to belong together: what a TLS listener presents. */
export function readKeyPair(certPath: string, keyPath: string): { cert: string; key: string; subjectAltName: string | undefined } {
  const { pem: cert, certificates } = readCertificates(certPath);
  const { pem: key, key: keyObject } = readPrivateKey(keyPath);
  const leaf = certificates[0]!;
  if (!leaf.checkPrivateKey(keyObject)) throw new PemError(`${keyPath} is not the private key of the first certificate in ${certPath}`);
  return { cert, key, subjectAltName: leaf.subjectAltName };
}
