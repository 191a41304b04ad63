import fs from 'node:fs';
import https from 'node:https';

import type { ConnectionOptions } from '@temporalio/client';
import { Connection } from '@temporalio/client';
import type { KafkaConfig } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import { SECURE_HOST, SecureStack } from '../support/secure-stack';

jest.setTimeout(600_000);

/**
 * Issue #9 item 5: the app against servers secured as a user's own infrastructure would be, all on
 * 127.0.0.2 (the shared stack keeps 127.0.0.1). First each server is shown to refuse what an app
 * that silently skipped TLS or credentials would send; then the whole flow runs through them.
 */
describe('the app against secure servers on 127.0.0.2', () => {
  let stack: SecureStack;

  beforeAll(async () => {
    stack = await SecureStack.create();
    await stack.start();
  });

  afterAll(async () => {
    await stack?.stop();
  });

  const read = (file: string) => fs.readFileSync(file, 'utf8');

  /** Tries one metadata round trip: 'ok', or 'refused: <why>'. */
  async function kafkaAttempt(cfg: Omit<KafkaConfig, 'brokers'>): Promise<string> {
    const admin = new Kafka({
      ...cfg,
      brokers: stack.kafkaBrokers,
      // Loopback answers at once: short waits keep the refusals that only time out (plaintext to a TLS port) quick.
      connectionTimeout: 2000,
      authenticationTimeout: 2000,
      requestTimeout: 3000,
      logLevel: logLevel.NOTHING,
    }).admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      await admin.listTopics();
      return 'ok';
    } catch (err) {
      return `refused: ${err instanceof Error ? `${err.name} ${err.message}` : String(err)}`;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  it('Kafka serves only SASL_SSL: plaintext, TLS without SASL, a wrong SCRAM password and an unknown CA are refused', async () => {
    const ca = [read(stack.pki.caFile)];
    const sasl = {
      mechanism: 'scram-sha-512' as const,
      username: stack.kafkaUser.name,
      password: stack.kafkaUser.password,
    };
    const wrongSasl = { ...sasl, password: 'not-the-password' };
    const attempts = {
      // The one way in works, so the refusals below are about security, not a dead broker.
      good: await kafkaAttempt({ clientId: 'good', ssl: { ca }, sasl }),
      plaintext: await kafkaAttempt({ clientId: 'plaintext' }),
      tlsWithoutSasl: await kafkaAttempt({ clientId: 'tls-only', ssl: { ca } }),
      saslWithoutTls: await kafkaAttempt({ clientId: 'sasl-plaintext', sasl }),
      wrongPassword: await kafkaAttempt({ clientId: 'wrong', ssl: { ca }, sasl: wrongSasl }),
      unknownCa: await kafkaAttempt({ clientId: 'stranger', ssl: { ca: [read(stack.pki.strangerCaFile)] }, sasl }),
    };
    expect(attempts.good).toBe('ok');
    expect(attempts.plaintext).toMatch(/^refused/);
    expect(attempts.tlsWithoutSasl).toMatch(/^refused/);
    expect(attempts.saslWithoutTls).toMatch(/^refused/);
    expect(attempts.wrongPassword).toMatch(/^refused: .*SASL SCRAM SHA512 authentication failed/);
    expect(attempts.unknownCa).toMatch(/^refused: .*(self.signed|unable to verify|certificate)/i);
  });

  it('PostgreSQL accepts TLS only, with a certificate for 127.0.0.2 signed by the test CA (verify-full)', async () => {
    const attempt = async (ssl: pg.ClientConfig['ssl']): Promise<string> => {
      const client = new pg.Client({ connectionString: stack.pgAdminUrl, ssl, connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        const { rows } = await client.query<{ ssl: boolean; version: string }>(
          'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
        );
        return `ssl=${String(rows[0]?.ssl)} ${rows[0]?.version ?? ''}`;
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    expect(await attempt(stack.pgSsl)).toMatch(/^ssl=true TLSv1\.[23]$/);
    expect(await attempt(false)).toMatch(/^refused: .*no pg_hba\.conf entry .*no encryption/);
    expect(await attempt({ ca: read(stack.pki.strangerCaFile), rejectUnauthorized: true })).toMatch(
      /^refused: .*(self.signed|unable to verify)/i,
    );
  });

  it('Temporal is reached only through the proxy, with a client certificate from the test CA (mTLS)', async () => {
    const caCert = fs.readFileSync(stack.pki.caFile);
    const attempt = async (tls: Partial<ConnectionOptions>) => {
      try {
        const c = await Connection.connect({ address: stack.temporalProxy.address, connectTimeout: 3000, ...tls });
        try {
          await c.workflowService.describeNamespace({ namespace: 'default' });
          return 'ok';
        } finally {
          await c.close();
        }
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      }
    };
    const good = await stack.temporalConnection();
    await good.workflowService.describeNamespace({ namespace: 'default' });
    await good.close();
    const refusedBefore = stack.temporalProxy.refused.length;
    expect(await attempt({})).toMatch(/^refused/);
    expect(await attempt({ tls: { serverRootCACertificate: caCert } })).toMatch(/^refused/);
    expect(
      await attempt({
        tls: {
          serverRootCACertificate: caCert,
          clientCertPair: {
            crt: fs.readFileSync(stack.pki.strangerClient.certFile),
            key: fs.readFileSync(stack.pki.strangerClient.keyFile),
          },
        },
      }),
    ).toMatch(/^refused/);
    // Each of the three was turned away at the handshake, not merely timed out elsewhere.
    expect(stack.temporalProxy.refused.length - refusedBefore).toBeGreaterThanOrEqual(3);
    expect(stack.temporalProxy.refused.join('\n')).toMatch(/certificate/i);
  });

  it('the registry answers only requests with the right basic credentials, over TLS', async () => {
    const get = (auth?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = https.request(
          `${stack.registryProxy.url}/subjects`,
          {
            ca: read(stack.pki.caFile),
            headers: auth ? { Authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {},
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await get(`${stack.registryUser.name}:${stack.registryUser.password}`)).toBe(200);
    expect(await get()).toBe(401);
    expect(await get(`${stack.registryUser.name}:wrong-password`)).toBe(401);
    expect(stack.registryProxy.refused).toEqual(['', stack.registryUser.name]);
    expect(SECURE_HOST).toBe('127.0.0.2');
  });
});
