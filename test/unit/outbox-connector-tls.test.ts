import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defaultOutboxConnectorOptions, outboxConnectorConfig } from '../../src/cdc/outbox-connector';
import { loadSettings } from '../../src/config/settings';

const adminUrl = 'postgres://postgres:pw@127.0.0.2:5544/postgres';

describe("Debezium's PostgreSQL TLS", () => {
  it('passes sslmode and the CA file to the connector by their JDBC names', () => {
    const config = outboxConnectorConfig(adminUrl, defaultOutboxConnectorOptions(), {
      sslmode: 'verify-full',
      sslRootCertFile: '/pki/ca.pem',
    });
    expect(config['database.sslmode']).toBe('verify-full');
    expect(config['database.sslrootcert']).toBe('/pki/ca.pem');
    expect(config['database.hostname']).toBe('127.0.0.2');
  });

  it('adds nothing without TLS, so a plaintext connector keeps the configuration it was registered with', () => {
    const plain = outboxConnectorConfig(adminUrl, defaultOutboxConnectorOptions());
    expect(outboxConnectorConfig(adminUrl, defaultOutboxConnectorOptions(), { sslmode: 'disable' })).toEqual(plain);
    expect(Object.keys(plain).filter((k) => k.startsWith('database.ssl'))).toEqual([]);
  });

  it('takes them from the PostgreSQL settings (KTS_PG_SSLMODE / KTS_PG_SSLROOTCERT)', () => {
    const ca = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kts-ca-')), 'ca.pem');
    fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    const settings = loadSettings(['provision'], { KTS_PG_SSLMODE: 'verify-full', KTS_PG_SSLROOTCERT: ca });
    expect(settings.postgres).toMatchObject({ sslmode: 'verify-full', sslRootCertFile: ca });
    fs.rmSync(path.dirname(ca), { recursive: true, force: true });
  });
});
