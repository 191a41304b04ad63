import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import type { ConnectionOptions } from '@temporalio/client';
import { Connection } from '@temporalio/client';
import type { KafkaConfig } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import type { AppRole, RunningApp } from '../../src/app/run-app';
import { APP_ROLES, startApp } from '../../src/app/run-app';
import { CATALOG_SKUS } from '../../src/cli/order-events';
import { placeOrders } from '../../src/cli/place-orders';
import { createKafka, createRegistryClient } from '../../src/config/clients';
import type { Settings } from '../../src/config/settings';
import { loadSettings } from '../../src/config/settings';
import { repoRoot } from '../../src/config/stack-config';
import { seedDemoStock } from '../../src/demo/demo-orders';
import { EventCodec } from '../../src/events/codec';
import { createLogger } from '../../src/observability/logger';
import { createMetrics } from '../../src/observability/metrics';
import { SECURE_HOST, SecureStack } from '../support/secure-stack';
import type { WaitOptions } from '../support/wait-until';
import { waitUntil } from '../support/wait-until';

/** Every server speaks TLS here and starts slowly: up to 180 s, a refused request meaning "not yet". */
const SLOW_WAIT: WaitOptions = { timeoutMs: 180_000, intervalMs: 500, retryOnError: true };

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
  describe('the whole flow, configured only through settings', () => {
    let app: RunningApp;
    let settings: Settings<AppRole>;
    let env: Record<string, string>;
    // The servers are this file's alone: the production names (no scope), as a deployment has them.
    const scope = '';
    /** What the proxies had counted before the app started: its long-lived connections open at start. */
    let before: { temporal: number; registry: number };

    beforeAll(async () => {
      before = { temporal: stack.temporalProxy.accepted, registry: stack.registryProxy.authorized };
      env = await stack.appEnv(scope);
      settings = loadSettings(APP_ROLES, env);
      const logger = createLogger('kts-secure-test', undefined, 'warn');
      app = await startApp(settings, { logger, metrics: createMetrics('main') });
      await seedDemoStock(app.inventoryPool);
    });

    afterAll(async () => {
      await app?.stop();
    });

    it('HTTP and Kafka orders end CONFIRMED through saga and CDC, and every event reaches the event store', async () => {
      expect(app.api?.url).toMatch(new RegExp(`^http://${SECURE_HOST.replace(/\./g, '\\.')}:\\d+$`));
      const apiUrl = app.api?.url ?? '';

      // Two orders over HTTP: orders + outbox rows → Debezium (TLS to PostgreSQL, SASL_SSL to Kafka) → the ingress.
      const httpIds: string[] = [];
      for (let i = 0; i < 2; i += 1) {
        const res = await fetch(`${apiUrl}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            customerId: `cust-secure-${i}`,
            // One member and one not: loyalty, the choreographed service, runs in the secure stack too.
            isLoyaltyMember: i === 0,
            currency: 'EUR',
            paymentToken: 'tok_visa',
            items: [{ sku: CATALOG_SKUS[0], quantity: 1, unitPriceMinor: 1_250 }],
          }),
        });
        expect(res.status).toBe(201);
        httpIds.push(((await res.json()) as { orderId: string }).orderId);
      }
      // Three straight onto Kafka, as an external producer would, with the same settings' clients.
      const placed = await placeOrders(
        createKafka(settings.kafka, 'secure-producer'),
        new EventCodec(createRegistryClient(settings.registry)),
        {
          count: 3,
          rate: 0,
          version: '2',
          duplicates: 0,
          bad: 0,
          cancels: 0,
          placedTopic: settings.common.names.topics.orderPlaced,
          cancelledTopic: settings.common.names.topics.orderCancelled,
          maxPayloadBytes: 256 * 1024,
        },
      );
      const ids = [...httpIds, ...placed.orderIds];
      expect(ids).toHaveLength(5);

      // Whether the order.placed event said the customer is a loyalty member (v2 events only).
      const isMember = (h: { eventType: string; payload: Record<string, unknown> }[]): boolean =>
        h.find((e) => e.eventType === 'order.placed')?.payload.isLoyaltyMember === true;
      let members = 0;
      for (const id of ids) {
        const order = await waitUntil(
          `order ${id} CONFIRMED`,
          async () =>
            (await (await fetch(`${apiUrl}/orders/${id}`)).json()) as { status?: string; saga?: { state?: string } },
          (o) => o.status === 'CONFIRMED' && o.saga?.state === 'CONFIRMED',
          SLOW_WAIT,
        );
        expect(order.status).toBe('CONFIRMED');
        const history = await waitUntil(
          `the events of ${id} in the event store`,
          () => app.eventStore!.store.history(id),
          (h) =>
            h.some((e) => e.eventType === 'order.confirmed') &&
            h.filter((e) => e.eventType === 'notifications.notification-sent').length >= 2 &&
            (!isMember(h) || h.some((e) => e.eventType === 'loyalty.points-awarded')),
          SLOW_WAIT,
        );
        const types = history.map((e) => e.eventType);
        // Kafka-placed and HTTP orders alike: order.placed is on the scope's topic either way.
        expect(types.filter((t) => !t.startsWith('loyalty.'))).toEqual([
          'order.placed',
          'notifications.notification-sent',
          'inventory.stock-reserved',
          'payments.payment-captured',
          'order.confirmed',
          'notifications.notification-sent',
        ]);
        // Loyalty reacts to order.confirmed on its own, so it races the saga's last notification:
        // only its presence (members only) and its place after the confirmation are fixed.
        expect(types.filter((t) => t.startsWith('loyalty.'))).toEqual(
          isMember(history) ? ['loyalty.points-awarded'] : [],
        );
        if (isMember(history)) {
          members += 1;
          expect(types.indexOf('loyalty.points-awarded')).toBeGreaterThan(types.indexOf('order.confirmed'));
        }
      }
      expect(members).toBeGreaterThanOrEqual(1);

      // It all went through the secured servers of this test, with credentials: none of it reached 127.0.0.1.
      expect(stack.registryProxy.authorized).toBeGreaterThan(before.registry);
      expect(stack.temporalProxy.accepted).toBeGreaterThan(before.temporal);
      const admin = new pg.Client({ connectionString: stack.pgAdminUrl, ssl: stack.pgSsl });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ usename: string; backend_type: string; ssl: boolean }>(
          `SELECT a.usename, a.backend_type, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
            WHERE a.usename IS NOT NULL AND a.pid <> pg_backend_pid()`,
        );
        // The app's pools (one role each) and Debezium's replication connection, all over TLS.
        expect(rows.filter((r) => !r.ssl)).toEqual([]);
        // Debezium's replication connection is among them (so CDC, too, read PostgreSQL over TLS).
        expect(rows.some((r) => r.backend_type === 'walsender' && r.ssl)).toBe(true);
        const { rows: stored } = await admin.query<{ n: string }>(
          'SELECT count(DISTINCT order_id) AS n FROM event_store.events WHERE order_id = ANY($1)',
          [ids],
        );
        expect(Number(stored[0]?.n)).toBe(5);
      } finally {
        await admin.end();
      }
    });
    it('a wrong registry password is refused by the registry, and the app says so in one line', async () => {
      const wrong = loadSettings(APP_ROLES, { ...env, KTS_REGISTRY_PASSWORD: 'not-the-password' });
      const refusedBefore = stack.registryProxy.refused.length;
      const err = await createRegistryClient(wrong.registry)
        .subjects()
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(err?.message).toMatch(/refused the credentials for user kts-registry-user at https:\/\/127\.0\.0\.2:\d+/);
      expect(err?.message).toContain('KTS_REGISTRY_USERNAME/PASSWORD');
      expect(err?.message.split('\n')).toHaveLength(1);
      // The proxy saw the user's name with a wrong password: the credentials were sent, and refused.
      expect(stack.registryProxy.refused.slice(refusedBefore)).toEqual([stack.registryUser.name]);
    });
    it('the API process started with a wrong registry password stops with exit 1 and one line saying why', async () => {
      // Its own environment as a deployment would give it: no provisioning credential, the wrong password.
      const { KTS_PG_ADMIN_URL: _admin, ...apiEnv } = env;
      // Asynchronously: the registry's proxy runs in this process and must keep answering meanwhile.
      const child = spawn(path.join(repoRoot(), 'node_modules', '.bin', 'tsx'), ['src/api/main.ts'], {
        cwd: repoRoot(),
        env: { ...apiEnv, KTS_REGISTRY_PASSWORD: 'not-the-password', NODE_NO_WARNINGS: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(stderr.trimEnd().split('\n')).toEqual([
        `✖ kts-api: schema registry refused the credentials for user ${stack.registryUser.name} at ${stack.registryProxy.url}: check KTS_REGISTRY_USERNAME/PASSWORD`,
      ]);
    });
  });
});
