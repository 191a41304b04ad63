import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { hasCommand } from '../../src/stack/processes';

/** PEM files of one certificate and its unencrypted PKCS#8 key. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
}

/** A throw-away PKI made by the test: nothing of it is trusted anywhere else. */
export interface TestPki {
  dir: string;
  caFile: string;
  /** Server certificate for every secure server of the test, naming `host` (IP SAN) and localhost. */
  server: CertFiles;
  /** Client certificate signed by the test CA (Temporal mTLS). */
  client: CertFiles;
  /** Another CA, trusted by nobody: a client trusting it must refuse our servers. */
  strangerCaFile: string;
  /** A client certificate from that other CA: well formed, but the proxy must refuse it. */
  strangerClient: CertFiles;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA certificate with the v3 extensions strict verifiers (rustls, Java) insist on. */
function makeCa(dir: string, name: string): CertFiles {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile]);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-sha256',
    '-days',
    '2',
    '-subj',
    `/CN=${name} (kafka-temporal-saga test CA)`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-addext',
    'subjectKeyIdentifier=hash',
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}

function issue(dir: string, ca: CertFiles, name: string, cn: string, extensions: string[]): CertFiles {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile]);
  openssl(dir, ['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', csr]);
  fs.writeFileSync(
    ext,
    ['basicConstraints=critical,CA:FALSE', 'authorityKeyIdentifier=keyid', ...extensions, ''].join('\n'),
  );
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-sha256',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}

/**
 * Makes a CA, a server certificate for `host` and client certificates with the openssl CLI (Node can
 * make keys but not certificates). `dir` must exist; the files are world-readable except the keys,
 * which the stack copies for servers that insist on owning them (PostgreSQL).
 */
export function makeTestPki(dir: string, host: string): TestPki {
  if (!hasCommand('openssl')) {
    throw new Error("'openssl' is not on PATH (the secure-stack test makes its CA with it): apt-get install openssl");
  }
  const ca = makeCa(dir, 'test-ca');
  const server = issue(dir, ca, 'server', host, [
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    `subjectAltName=IP:${host},DNS:localhost`,
  ]);
  const client = issue(dir, ca, 'client', 'kts-app', [
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=clientAuth',
  ]);
  const stranger = makeCa(dir, 'stranger-ca');
  const strangerClient = issue(dir, stranger, 'stranger-client', 'kts-app', [
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=clientAuth',
  ]);
  return { dir, caFile: ca.certFile, server, client, strangerCaFile: stranger.certFile, strangerClient };
}
