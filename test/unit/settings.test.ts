import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { scopeNames } from '../../src/config/scope';
import type { Settings } from '../../src/config/settings';
import { loadSettings, roleFromUrl, ROLES, SettingsError } from '../../src/config/settings';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kts-settings-'));
const file = (name: string, text: string) => {
  const p = path.join(tmp, name);
  writeFileSync(p, text);
  return p;
};
/** A home with no Temporal config file, so a developer's own ~/.config/temporalio does not leak in. */
const bare = { HOME: tmp };

describe('the settings model', () => {
  it('with zero configuration, every endpoint is the dev stack', () => {
    const s = loadSettings(ROLES, bare);
    expect(s.temporal.connection.address).toBe('127.0.0.1:7233');
    expect(s.temporal.connection.tls).toBeUndefined();
    expect(s.temporal.namespace).toBe('default');
    expect(s.kafka).toEqual({ brokers: ['127.0.0.1:9092'], ssl: undefined, sasl: undefined });
    expect(s.registry).toEqual({ url: 'http://127.0.0.1:8081/apis/ccompat/v7' });
    expect(s.postgres.ssl).toBe(false);
    expect(s.roles.orders.pgUrl).toBe('postgres://kts_orders:orders-dev-password@127.0.0.1:5432/postgres');
    expect(s.roles.provision.adminUrl).toBe('postgres://postgres:postgres@127.0.0.1:5432/postgres');
    expect(s.roles.provision.connectUrl).toBe('http://127.0.0.1:8083');
    expect(s.common.names.taskQueues.saga).toBe('order-saga');
    expect(s.common.names.topics.orderPlaced).toBe('order.placed');
  });

  it('traces Temporal workflows and activities only where spans can leave the process, unless told', () => {
    const tracing = (env: Record<string, string>) => loadSettings([], { ...bare, ...env }).common.temporalTracing;
    const endpoint = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.2:4318/v1/traces' };
    expect(tracing({})).toBe(false);
    expect(tracing(endpoint)).toBe(true);
    expect(tracing({ KTS_TEMPORAL_TRACING: 'on' })).toBe(true);
    expect(tracing({ ...endpoint, KTS_TEMPORAL_TRACING: 'off' })).toBe(false);
    expect(() => tracing({ KTS_TEMPORAL_TRACING: 'yes' })).toThrow(/KTS_TEMPORAL_TRACING/);
  });

  it("derives the defaults from the stack's settings, never from constants", () => {
    const s = loadSettings(['ingress'], {
      ...bare,
      KTS_STACK_HOST: '127.0.0.2',
      KTS_KAFKA_PORT: '19092',
      KTS_TEMPORAL_PORT: '17233',
      KTS_REGISTRY_PORT: '18081',
      KTS_PG_PORT: '15432',
    });
    expect(s.kafka.brokers).toEqual(['127.0.0.2:19092']);
    expect(s.temporal.connection.address).toBe('127.0.0.2:17233');
    expect(s.registry.url).toBe('http://127.0.0.2:18081/apis/ccompat/v7');
    expect(s.roles.ingress.pgUrl).toBe('postgres://kts_ingress:ingress-dev-password@127.0.0.2:15432/postgres');
    expect(() => loadSettings(['ingress'], { ...bare, KTS_STACK_HOST: '10.0.0.1' })).toThrow(/KTS_STACK_HOST/);
  });

  it("declares topic replication from the stack's Kafka: 1 on one node, 3 with min ISR 2 on three, or as set", () => {
    const topics = (env: Record<string, string>) =>
      loadSettings(['provision'], { ...bare, ...env }).roles.provision.topics;
    expect(topics({})).toMatchObject({ replicationFactor: 1, minInsyncReplicas: 1 });
    expect(topics({ KTS_STACK_KAFKA_BROKERS: '3' })).toMatchObject({ replicationFactor: 3, minInsyncReplicas: 2 });
    // A user's own cluster: its replication is set, whatever the dev stack runs.
    expect(topics({ KTS_TOPIC_REPLICATION_FACTOR: '5' })).toMatchObject({ replicationFactor: 5, minInsyncReplicas: 2 });
    expect(topics({ KTS_TOPIC_REPLICATION_FACTOR: '2' })).toMatchObject({ replicationFactor: 2, minInsyncReplicas: 1 });
    expect(() => topics({ KTS_TOPIC_REPLICATION_FACTOR: '1', KTS_TOPIC_MIN_INSYNC_REPLICAS: '2' })).toThrow(
      /KTS_TOPIC_MIN_INSYNC_REPLICAS=2 is above the replication factor 1/,
    );
    // The three nodes are the app's default brokers too.
    expect(loadSettings(['ingress'], { ...bare, KTS_STACK_KAFKA_BROKERS: '3' }).kafka.brokers).toEqual([
      '127.0.0.1:9092',
      '127.0.0.1:9094',
      '127.0.0.1:9096',
    ]);
  });

  it('takes Temporal from the SDK conventions: variables, and profiles of a TOML file', () => {
    const ca = file('temporal-ca.pem', 'CA PEM');
    const env = {
      ...bare,
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_API_KEY: 'secret-key',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
    };
    const s = loadSettings(['saga'], env);
    expect(s.temporal.namespace).toBe('ns.acct');
    expect(s.temporal.connection).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', apiKey: 'secret-key' });
    expect(s.temporal.connection.tls).toMatchObject({ serverRootCACertificate: Buffer.from('CA PEM') });

    const toml = file(
      'temporal.toml',
      '[profile.staging]\naddress = "127.0.0.9:7233"\nnamespace = "staging"\n[profile.staging.tls]\ndisabled = true\n',
    );
    const p = loadSettings(['saga'], { ...bare, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' });
    expect(p.temporal.connection.address).toBe('127.0.0.9:7233');
    expect(p.temporal.namespace).toBe('staging');
    expect(p.temporal.connection.tls).toBe(false);
    expect(() => loadSettings(['saga'], { ...bare, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'nope' })).toThrow(
      /invalid temporal settings: Profile 'nope' not found/,
    );
  });

  it('gives every Kafka client the broker list, TLS (CA, client certificate) and SASL', () => {
    const s = loadSettings([], {
      ...bare,
      KTS_KAFKA_BROKERS: 'b1.example:9093, b2.example:9093',
      KTS_KAFKA_TLS_CA_FILE: file('kafka-ca.pem', 'KAFKA CA'),
      KTS_KAFKA_TLS_CERT_FILE: file('kafka-cert.pem', 'CERT'),
      KTS_KAFKA_TLS_KEY_FILE: file('kafka-key.pem', 'KEY'),
      KTS_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KTS_KAFKA_SASL_USERNAME: 'app',
      KTS_KAFKA_SASL_PASSWORD: 'pw',
    });
    expect(s.kafka).toEqual({
      brokers: ['b1.example:9093', 'b2.example:9093'],
      ssl: { ca: 'KAFKA CA', cert: 'CERT', key: 'KEY' },
      sasl: { mechanism: 'scram-sha-512', username: 'app', password: 'pw' },
    });
    expect(loadSettings([], { ...bare, KTS_KAFKA_TLS: 'true' }).kafka.ssl).toBe(true);
    expect(() => loadSettings([], { ...bare, KTS_KAFKA_TLS_CERT_FILE: '/x' })).toThrow(/go together \(mTLS\)/);
    expect(() => loadSettings([], { ...bare, KTS_KAFKA_SASL_MECHANISM: 'plain' })).toThrow(
      /KTS_KAFKA_SASL_MECHANISM=plain needs KTS_KAFKA_SASL_USERNAME/,
    );
    expect(() => loadSettings([], { ...bare, KTS_KAFKA_SASL_MECHANISM: 'gssapi' })).toThrow(
      /invalid kafka settings: KTS_KAFKA_SASL_MECHANISM/,
    );
    expect(() => loadSettings([], { ...bare, KTS_KAFKA_TLS_CA_FILE: '/nonexistent/ca.pem' })).toThrow(
      /KTS_KAFKA_TLS_CA_FILE: cannot read \/nonexistent\/ca.pem/,
    );
  });

  it('gives the registry a URL with basic-auth credentials and a CA', () => {
    const s = loadSettings([], {
      ...bare,
      KTS_REGISTRY_URL: 'https://registry.example/apis/ccompat/v7/',
      KTS_REGISTRY_USERNAME: 'svc',
      KTS_REGISTRY_PASSWORD: 'pw',
      KTS_REGISTRY_CA_FILE: file('registry-ca.pem', 'REG CA'),
    });
    expect(s.registry).toEqual({
      url: 'https://registry.example/apis/ccompat/v7',
      username: 'svc',
      password: 'pw',
      ca: 'REG CA',
    });
    expect(() => loadSettings([], { ...bare, KTS_REGISTRY_PASSWORD: 'pw' })).toThrow(/go together/);
  });

  it('gives PostgreSQL a URL per role and TLS, with the standard PG* names as fallback', () => {
    const ca = file('pg-ca.pem', 'PG CA');
    const s = loadSettings(['orders'], {
      ...bare,
      PGHOST: 'db.internal',
      PGPORT: '6432',
      PGDATABASE: 'shop',
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: ca,
    });
    expect(s.roles.orders.pgUrl).toBe('postgres://kts_orders:orders-dev-password@db.internal:6432/shop');
    expect(s.postgres.ssl).toEqual({ ca: 'PG CA', rejectUnauthorized: true });
    const own = loadSettings(['orders'], {
      ...bare,
      KTS_PG_URL_ORDERS: 'postgres://orders_app:s3cret@pg.example:5432/prod',
      KTS_PG_SSLMODE: 'require',
      PGSSLMODE: 'disable',
    });
    expect(own.roles.orders.pgUrl).toBe('postgres://orders_app:s3cret@pg.example:5432/prod');
    expect(own.postgres.ssl).toEqual({ rejectUnauthorized: false });
    expect(roleFromUrl(own.roles.orders.pgUrl)).toEqual({ role: 'orders_app', password: 's3cret' });
    expect(() => loadSettings(['orders'], { ...bare, KTS_PG_URL_ORDERS: 'mysql://x' })).toThrow(
      /invalid orders settings: KTS_PG_URL_ORDERS: must be a postgres:\/\/ URL/,
    );
  });

  it('names everything of a deployment from one KTS_SCOPE', () => {
    const s = loadSettings(['ingress'], { ...bare, KTS_SCOPE: 'blue-2' });
    expect(s.common.names).toEqual(scopeNames('blue-2'));
    expect(s.common.names.taskQueues).toEqual({
      saga: 'blue-2.order-saga',
      orders: 'blue-2.orders',
      inventory: 'blue-2.inventory',
      payments: 'blue-2.payments',
      notifications: 'blue-2.notifications',
    });
    expect(s.common.names.topics.stockReserved).toBe('blue-2.inventory.stock-reserved');
    expect(s.common.names.groups).toEqual({
      ingress: 'blue-2.order-ingress',
      eventStore: 'blue-2.event-store',
      loyalty: 'blue-2.loyalty',
    });
    expect(s.common.names.connector).toEqual({
      name: 'blue-2.kts-outbox',
      slotName: 'blue_2_kts_outbox',
      publicationName: 'blue_2_kts_outbox',
      heartbeatTopic: 'blue-2._kts-outbox-heartbeat',
    });
    expect(() => loadSettings(['ingress'], { ...bare, KTS_SCOPE: 'Blue.2' })).toThrow(
      /invalid common settings: KTS_SCOPE/,
    );
  });

  it('fails fast naming the variable and its section', () => {
    const bad = (env: Record<string, string>) => () => loadSettings(ROLES, { ...bare, ...env });
    expect(bad({ KTS_INGRESS_PARTITION_CONCURRENCY: 'lots' })).toThrow(
      /invalid ingress settings: KTS_INGRESS_PARTITION_CONCURRENCY/,
    );
    expect(bad({ KTS_INGRESS_BACKOFF_INITIAL_MS: '5000', KTS_INGRESS_BACKOFF_MAX_MS: '100' })).toThrow(
      /KTS_INGRESS_BACKOFF_MAX_MS is below KTS_INGRESS_BACKOFF_INITIAL_MS/,
    );
    expect(bad({ KTS_GATEWAY_LATENCY_MIN_MS: '10', KTS_GATEWAY_LATENCY_MAX_MS: '5' })).toThrow(
      /invalid payments settings: KTS_GATEWAY_LATENCY_MAX_MS/,
    );
    expect(bad({ LOG_LEVEL: 'loud' })).toThrow(SettingsError);
  });
});

describe('credentials by construction', () => {
  const payments = 'postgres://kts_payments:payments-dev-password@127.0.0.1:5432/postgres';

  it("a service worker's settings hold its own database URL and no other role's", () => {
    const s = loadSettings(['orders'], bare);
    expect(Object.keys(s.roles)).toEqual(['orders']);
    expect(JSON.stringify(s)).not.toMatch(/kts_(payments|inventory|notifications|card_gateway|ingress|event_store)/);
    expect(JSON.stringify(s)).not.toMatch(/postgres:postgres@/);
    // @ts-expect-error -- the orders worker's settings have no payments section, not even as a type.
    expect(s.roles.payments).toBeUndefined();
  });

  it('the orders worker cannot even be given the payments URL', () => {
    expect(() => loadSettings(['orders'], { ...bare, KTS_PG_URL_PAYMENTS: payments })).toThrow(
      /KTS_PG_URL_PAYMENTS is set, but this process runs orders: only provision or payments may hold that credential/,
    );
    expect(() => loadSettings(['saga'], { ...bare, KTS_PG_URL_ORDERS: payments })).toThrow(/this process runs saga/);
    expect(() => loadSettings(['ingress'], { ...bare, KTS_PG_ADMIN_URL: payments })).toThrow(
      /KTS_PG_ADMIN_URL is set, but this process runs ingress: only provision/,
    );
    // The process that runs payments takes it; so does the all-in-one main job.
    expect(loadSettings(['payments'], { ...bare, KTS_PG_URL_PAYMENTS: payments }).roles.payments.pgUrl).toBe(payments);
    const all: Settings = loadSettings(ROLES, { ...bare, KTS_PG_URL_PAYMENTS: payments });
    expect(all.roles.payments.pgUrl).toBe(payments);
  });

  it("the outbox cleaner holds its own role's URL only, and refuses any service's", () => {
    const s = loadSettings(['outboxCleaner'], bare);
    expect(s.roles.outboxCleaner.pgUrl).toBe(
      'postgres://kts_outbox_cleaner:outbox-cleaner-dev-password@127.0.0.1:5432/postgres',
    );
    expect(JSON.stringify(s)).not.toMatch(
      /kts_(orders|payments|inventory|notifications|card_gateway|ingress|event_store)/,
    );
    const own = 'postgres://cleaner:s3cret@db.internal:5432/shop';
    expect(loadSettings(['outboxCleaner'], { ...bare, KTS_PG_URL_OUTBOX_CLEANER: own }).roles.outboxCleaner.pgUrl).toBe(
      own,
    );
    for (const name of [
      'KTS_PG_URL_ORDERS',
      'KTS_PG_URL_INVENTORY',
      'KTS_PG_URL_PAYMENTS',
      'KTS_PG_URL_NOTIFICATIONS',
    ]) {
      expect(() => loadSettings(['outboxCleaner'], { ...bare, [name]: payments })).toThrow(
        new RegExp(`${name} is set, but this process runs outboxCleaner`),
      );
    }
    // Nor may a service's worker hold the cleaner's credential; provisioning creates the role with it.
    expect(() => loadSettings(['orders'], { ...bare, KTS_PG_URL_OUTBOX_CLEANER: own })).toThrow(
      /KTS_PG_URL_OUTBOX_CLEANER is set, but this process runs orders: only provision or outboxCleaner may hold/,
    );
    expect(
      loadSettings(['provision'], { ...bare, KTS_PG_URL_OUTBOX_CLEANER: own }).roles.provision.roleUrls.outbox_cleaner,
    ).toBe(own);
  });
});
