/**
 * Client factories: every Kafka, PostgreSQL, registry and Temporal client of the app is made here
 * from the parsed settings, so TLS, SASL and credentials apply to all of them alike.
 */
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import { RegistryClient } from '../kafka/registry-client';
import type { KafkaSettings, PostgresSettings, RegistrySettings, TemporalSettings } from './settings';

/** A kafkajs client with the settings' brokers, TLS and SASL. Quiet unless told otherwise. */
export function createKafka(
  kafka: KafkaSettings,
  clientId: string,
  extra: Omit<KafkaConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl'> = {},
): Kafka {
  return new Kafka({
    logLevel: logLevel.NOTHING,
    ...extra,
    clientId,
    brokers: kafka.brokers,
    ssl: kafka.ssl,
    sasl: kafka.sasl as SASLOptions | undefined,
  });
}

/** A pool logged in with `url`, with the settings' TLS; idle clients dying never crash the process. */
export function createPgPool(
  url: string,
  postgres: PostgresSettings,
  opts: { max?: number; applicationName: string; onError?: (err: Error) => void },
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    ssl: postgres.ssl,
    max: opts.max ?? postgres.poolSize,
    application_name: opts.applicationName,
  });
  // An idle client dying (server restart) must not crash the process; the next query reconnects.
  pool.on('error', opts.onError ?? (() => undefined));
  return pool;
}

/** A single connection (migrations, admin checks) with the settings' TLS. */
export function createPgClient(url: string, postgres: PostgresSettings, applicationName: string): pg.Client {
  return new pg.Client({ connectionString: url, ssl: postgres.ssl, application_name: applicationName });
}

/** The schema registry client with the settings' URL, basic auth and CA. */
export function createRegistryClient(registry: RegistrySettings): RegistryClient {
  return new RegistryClient(registry);
}

/** A Temporal client connection (address, TLS, API key from @temporalio/envconfig). */
export function connectTemporal(temporal: TemporalSettings): Promise<Connection> {
  return Connection.connect(temporal.connection);
}

/** A Temporal worker connection (same settings as {@link connectTemporal}). */
export function connectTemporalWorker(temporal: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect(temporal.connection);
}
