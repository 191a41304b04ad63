import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import type { StackConfig } from '../../src/config/stack-config';
import type { Component, StackContext } from '../../src/stack/component';
import { logFile } from '../../src/stack/component';
import { connect } from '../../src/stack/components/connect';
import { kafka } from '../../src/stack/components/kafka';
import { postgres, postgresDataDir } from '../../src/stack/components/postgres';
import { registry } from '../../src/stack/components/registry';
import { temporal } from '../../src/stack/components/temporal';
import type { PidRecord } from '../../src/stack/processes';
import { isOurProcessAlive, stopProcess } from '../../src/stack/processes';
import type { ScramUser, SecureListeners } from '../../src/stack/secure';
import { processesMentioning } from './live-processes';
import type { TestPki } from './secure-certs';
import { makeTestPki } from './secure-certs';
import { MtlsProxy, RegistryAuthProxy } from './secure-proxies';
import { stackConfig } from './stack';
import { waitUntil } from './wait-until';

/** The second loopback address every secure server binds to; the shared stack owns 127.0.0.1. */
export const SECURE_HOST = '127.0.0.2';

/**
 * Where the private Temporal dev server itself listens (plaintext, random ports). Not SECURE_HOST:
 * with `--ip 127.0.0.2` the dev server's own services still dial each other on 127.0.0.1, so its
 * frontend answers namespace calls but every workflow call fails ("dial tcp 127.0.0.1:…: connection
 * refused"). Nothing of the app reaches it there: the app only knows the mTLS proxy on SECURE_HOST.
 */
export const TEMPORAL_BACKEND_HOST = '127.0.0.1';

/** A port nobody listens on right now, on `host`. */
export function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Letters and digits only: fits every credential syntax on the way (SCRAM format args, JAAS, URLs). */
function secret(): string {
  return crypto.randomBytes(12).toString('hex');
}

function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * A private set of the stack's servers on 127.0.0.2, each behind what a real deployment puts in
 * front of it: PostgreSQL with ssl=on and hostssl-only access, Kafka with a single SASL_SSL
 * (SCRAM-SHA-512) client listener, Kafka Connect + Debezium talking SASL_SSL to it, the Temporal dev
 * server behind an mTLS-terminating proxy on 127.0.0.2 (the server itself on a random 127.0.0.1
 * port, see TEMPORAL_BACKEND_HOST), and Apicurio behind an https basic-auth proxy. The
 * servers are the stack's own components started from the shared download cache; only the proxies
 * are test code. One instance per test file: `start()` in beforeAll, `stop()` in afterAll.
 */
export class SecureStack {
  private readonly records: { name: string; rec: PidRecord }[] = [];
  /** Milliseconds from `start()` until each server answered, for the report of a run. */
  readonly readyAfterMs: Record<string, number> = {};
  private startedAt = 0;
  readonly secure: SecureListeners;
  /** The app's Kafka user. */
  readonly kafkaUser: ScramUser = { name: 'kts-app', password: secret() };
  readonly registryUser: ScramUser = { name: 'kts-registry-user', password: secret() };
  readonly temporalProxy: MtlsProxy;
  readonly registryProxy: RegistryAuthProxy;
  readonly temporalProfileFile: string;

  private constructor(
    readonly dir: string,
    readonly pki: TestPki,
    readonly cfg: StackConfig,
    proxyPorts: { temporal: number; registry: number },
  ) {
    this.secure = {
      tls: { caFile: pki.caFile, certFile: pki.server.certFile, keyFile: pki.server.keyFile },
      kafka: {
        broker: { name: 'kts-broker', password: secret() },
        connect: { name: 'kts-connect', password: secret() },
        users: [this.kafkaUser],
      },
    };
    this.temporalProxy = new MtlsProxy(SECURE_HOST, proxyPorts.temporal, {
      caFile: pki.caFile,
      server: pki.server,
      target: { host: TEMPORAL_BACKEND_HOST, port: cfg.ports.temporal },
    });
    this.registryProxy = new RegistryAuthProxy(SECURE_HOST, proxyPorts.registry, {
      server: pki.server,
      username: this.registryUser.name,
      password: this.registryUser.password,
      target: `http://${SECURE_HOST}:${cfg.ports.registry}`,
    });
    this.temporalProfileFile = path.join(dir, 'temporal.toml');
    fs.writeFileSync(
      this.temporalProfileFile,
      [
        '# A Temporal client profile (@temporalio/envconfig): the mTLS proxy in front of the private dev server.',
        '[profile.secure]',
        `address = "${this.temporalProxy.address}"`,
        'namespace = "default"',
        '[profile.secure.tls]',
        `server_ca_cert_path = "${pki.caFile}"`,
        `client_cert_path = "${pki.client.certFile}"`,
        `client_key_path = "${pki.client.keyFile}"`,
        '',
      ].join('\n'),
    );
  }

  /** Allocates ports and certificates. Nothing runs until `start()`. */
  static async create(): Promise<SecureStack> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-secure-'));
    // PostgreSQL runs as the postgres user when we are root: it must be able to enter the folder.
    fs.chmodSync(dir, 0o755);
    const pkiDir = path.join(dir, 'pki');
    fs.mkdirSync(pkiDir);
    const pki = makeTestPki(pkiDir, SECURE_HOST);
    const port = () => freePortOn(SECURE_HOST);
    const cfg: StackConfig = {
      dataDir: path.join(dir, 'stack'),
      cacheDir: stackConfig.cacheDir,
      host: SECURE_HOST,
      ports: {
        postgres: await port(),
        temporal: await freePortOn(TEMPORAL_BACKEND_HOST),
        temporalUi: await freePortOn(TEMPORAL_BACKEND_HOST),
        kafka: await port(),
        kafkaController: await port(),
        registry: await port(),
        connect: await port(),
      },
      postgres: { user: 'postgres', password: secret(), database: 'postgres' },
    };
    return new SecureStack(dir, pki, cfg, { temporal: await port(), registry: await port() });
  }

  // ---- where the app is pointed ----------------------------------------------------------------

  get kafkaBrokers(): string[] {
    return [`${SECURE_HOST}:${this.cfg.ports.kafka}`];
  }

  get connectUrl(): string {
    return `http://${SECURE_HOST}:${this.cfg.ports.connect}`;
  }

  /** A PostgreSQL URL for `user` on the TLS-only server (TLS options are given apart, as the app's settings do). */
  pgUrl(user: string, password: string): string {
    return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${SECURE_HOST}:${this.cfg.ports.postgres}/postgres`;
  }

  get pgAdminUrl(): string {
    return this.pgUrl(this.cfg.postgres.user, this.cfg.postgres.password);
  }

  /** pg's TLS options for verify-full against the test CA. */
  get pgSsl(): pg.ClientConfig['ssl'] {
    return { ca: fs.readFileSync(this.pki.caFile, 'utf8'), rejectUnauthorized: true };
  }

  /** A Kafka client with the app's credentials over TLS, for the test's own reads and writes. */
  kafkaClient(clientId = 'secure-test'): Kafka {
    return new Kafka({
      clientId,
      brokers: this.kafkaBrokers,
      ssl: { ca: [fs.readFileSync(this.pki.caFile, 'utf8')] },
      sasl: { mechanism: 'scram-sha-512', username: this.kafkaUser.name, password: this.kafkaUser.password },
      logLevel: logLevel.NOTHING,
    });
  }

  /** A Temporal client connection through the mTLS proxy, with the test CA and client certificate. */
  temporalConnection(): Promise<Connection> {
    return Connection.connect({
      address: this.temporalProxy.address,
      connectTimeout: 5000,
      tls: {
        serverRootCACertificate: fs.readFileSync(this.pki.caFile),
        clientCertPair: {
          crt: fs.readFileSync(this.pki.client.certFile),
          key: fs.readFileSync(this.pki.client.keyFile),
        },
      },
    });
  }

  /**
   * The app's whole configuration for these servers, as a deployment would set it: environment
   * variables only (the settings model's names), nothing inherited from this process. The dev
   * stack's own ports are pointed at ports nobody listens on, so any address the app took from a
   * default instead of these settings fails instead of silently reaching the shared stack.
   */
  async appEnv(scope: string, overrides: Record<string, string> = {}): Promise<Record<string, string>> {
    const taken = new Set<number>();
    const dead = async (): Promise<string> => {
      const port = await freePortOn('127.0.0.1');
      // The stack settings refuse two servers on one port.
      if (taken.has(port)) return dead();
      taken.add(port);
      return String(port);
    };
    const ca = this.pki.caFile;
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.dir,
      KTS_SCOPE: scope,
      LOG_LEVEL: 'warn',
      KTS_METRICS_PORT: '0',
      // Temporal: a client profile of @temporalio/envconfig, nothing else.
      TEMPORAL_CONFIG_FILE: this.temporalProfileFile,
      TEMPORAL_PROFILE: 'secure',
      // Kafka: SASL_SSL with SCRAM-SHA-512 and the test CA.
      KTS_KAFKA_BROKERS: this.kafkaBrokers.join(','),
      KTS_KAFKA_TLS_CA_FILE: ca,
      KTS_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KTS_KAFKA_SASL_USERNAME: this.kafkaUser.name,
      KTS_KAFKA_SASL_PASSWORD: this.kafkaUser.password,
      // Registry: https with basic auth.
      KTS_REGISTRY_URL: this.registryProxy.url,
      KTS_REGISTRY_USERNAME: this.registryUser.name,
      KTS_REGISTRY_PASSWORD: this.registryUser.password,
      KTS_REGISTRY_CA_FILE: ca,
      // PostgreSQL: TLS with the host name checked against the test CA's certificate.
      KTS_PG_SSLMODE: 'verify-full',
      KTS_PG_SSLROOTCERT: ca,
      PGHOST: SECURE_HOST,
      PGPORT: String(this.cfg.ports.postgres),
      KTS_PG_ADMIN_URL: this.pgAdminUrl,
      KTS_CONNECT_URL: this.connectUrl,
      // The Orders API listens on the second loopback address too.
      KTS_API_HOST: SECURE_HOST,
      KTS_API_PORT: '0',
      // Defaults that must never be used.
      KTS_PG_PORT: await dead(),
      KTS_TEMPORAL_PORT: await dead(),
      KTS_TEMPORAL_UI_PORT: await dead(),
      KTS_KAFKA_PORT: await dead(),
      KTS_KAFKA_CONTROLLER_PORT: await dead(),
      KTS_REGISTRY_PORT: await dead(),
      KTS_CONNECT_PORT: await dead(),
      ...overrides,
    };
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  private async launch(c: Component): Promise<PidRecord> {
    const cfg = c.name === 'temporal' ? { ...this.cfg, host: TEMPORAL_BACKEND_HOST } : this.cfg;
    const ctx: StackContext = { cfg, progress: () => undefined, secure: this.secure };
    const rec = await c.start(ctx);
    this.records.push({ name: c.name, rec });
    return rec;
  }

  /** Polls `check` until it passes; fails with the server's log tail when it exits or never answers. */
  private async ready(c: Component, rec: PidRecord, check: () => Promise<unknown>, timeoutMs = 180_000): Promise<void> {
    const log = logFile(this.cfg, c.name);
    try {
      await waitUntil(
        `secure ${c.name} to answer`,
        async () => {
          await check();
          return true;
        },
        undefined,
        {
          timeoutMs,
          intervalMs: 500,
          retryOnError: true,
          bail: () => {
            if (!isOurProcessAlive(rec)) throw new Error(`secure ${c.name} exited during start-up`);
          },
        },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}:\n${tail(log)}`);
    }
    this.readyAfterMs[c.name] = Date.now() - this.startedAt;
  }

  /** Starts every server and proxy, in parallel where nothing depends on another, and waits until each answers. */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    const pgUp = (async () => {
      const rec = await this.launch(postgres);
      await this.ready(postgres, rec, async () => {
        const client = new pg.Client({
          connectionString: this.pgAdminUrl,
          ssl: this.pgSsl,
          connectionTimeoutMillis: 2000,
        });
        await client.connect();
        await client.query('select 1');
        await client.end();
      });
    })();
    const temporalUp = (async () => {
      const rec = await this.launch(temporal);
      await this.ready(temporal, rec, async () => {
        const c = await Connection.connect({
          address: `${TEMPORAL_BACKEND_HOST}:${this.cfg.ports.temporal}`,
          connectTimeout: 2000,
        });
        try {
          await c.workflowService.describeNamespace({ namespace: 'default' });
        } finally {
          await c.close();
        }
      });
      await this.temporalProxy.open();
    })();
    const registryUp = (async () => {
      const rec = await this.launch(registry);
      await this.ready(registry, rec, async () => {
        const res = await fetch(`http://${SECURE_HOST}:${this.cfg.ports.registry}/apis/ccompat/v7/subjects`, {
          signal: AbortSignal.timeout(3000),
        });
        if (!res.ok) throw new Error(`registry answered ${res.status}`);
      });
      await this.registryProxy.open();
    })();
    const kafkaUp = (async () => {
      const rec = await this.launch(kafka);
      await this.ready(kafka, rec, async () => {
        const admin = this.kafkaClient('secure-ready').admin({ retry: { retries: 0 } });
        await admin.connect();
        try {
          await admin.describeCluster();
        } finally {
          await admin.disconnect();
        }
      });
      const connectRec = await this.launch(connect);
      await this.ready(connect, connectRec, async () => {
        const res = await fetch(`${this.connectUrl}/connector-plugins`, { signal: AbortSignal.timeout(3000) });
        if (!(res.ok && (await res.text()).includes('PostgresConnector'))) throw new Error('no Debezium plugin yet');
      });
    })();
    const results = await Promise.allSettled([pgUp, temporalUp, registryUp, kafkaUp]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length) throw new Error(failed.map((f) => (f.reason as Error).message).join('\n\n'));
  }

  /** Stops every process it started (whole process groups) and both proxies, and removes its files. */
  async stop(): Promise<void> {
    await Promise.all([this.temporalProxy.close(), this.registryProxy.close()]);
    // Connect first: it would otherwise log a storm of reconnects to the broker going away.
    const order = ['connect', 'kafka', 'registry', 'temporal', 'postgres'];
    const recs = [...this.records].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    for (const { rec } of recs) await stopProcess(rec, 10_000);
    const left = processesMentioning(this.dir);
    if (left.length) throw new Error(`secure stack processes still running after stop:\n${left.join('\n')}`);
    const pgData = await postgresDataDir(this.cfg);
    // Outside our folder only when the postgres user could not enter it: then it is ours alone too.
    if (!pgData.startsWith(this.dir)) fs.rmSync(pgData, { recursive: true, force: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
