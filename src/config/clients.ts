/**
 * Client factories: every Kafka, PostgreSQL, registry and Temporal client of the app is made here
 * from the parsed settings, so TLS, SASL and credentials apply to all of them alike.
 */
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type {
  KafkaConfig,
  Message,
  PartitionMetadata,
  Producer,
  ProducerRecord,
  RecordMetadata,
  RetryOptions,
  SASLOptions,
} from 'kafkajs';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
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

/**
 * Retries of a producer's send: about two minutes in all (the Java client's delivery.timeout.ms),
 * which outlasts a leader election after a broker dies, then the send fails instead of hanging.
 */
export const PRODUCER_RETRY: RetryOptions = { retries: 10, initialRetryTime: 300, maxRetryTime: 30_000 };

/**
 * Every producer of the app is made here: idempotent, so a batch retried after a lost acknowledgement
 * (a leader dying mid-request) is written once and in order, and with one request in flight per
 * broker, the mode kafkajs's idempotent producer is built for. Sends must use acks: -1 (every
 * in-sync replica, at least the topic's min.insync.replicas), which idempotence requires; the app's
 * sends all do. Topics are never auto-created: provisioning makes them with their replication.
 *
 * Each send goes out one partition per request (see {@link partitionSafeSend}): kafkajs 2.2.4 loses
 * acknowledged records when one send spans several brokers and a leader dies mid-send.
 */
export function createProducer(kafka: Kafka, retry: RetryOptions = PRODUCER_RETRY): Producer {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry });
  const admin = kafka.admin({ retry });
  let adminReady: Promise<void> | undefined;
  const metadata = new Map<string, Promise<PartitionMetadata[]>>();
  const partitionsOf = (topic: string) => {
    let known = metadata.get(topic);
    if (!known) {
      known = (async () => {
        await (adminReady ??= admin.connect());
        const meta = await admin.fetchTopicMetadata({ topics: [topic] });
        return meta.topics[0]?.partitions ?? [];
      })();
      // A failed lookup is asked again next time; a topic's partitions never change (provisioning).
      known.catch(() => metadata.delete(topic));
      metadata.set(topic, known);
    }
    return known;
  };
  const send = partitionSafeSend((r) => producer.send(r), partitionsOf);
  return {
    ...producer,
    send,
    sendBatch: async ({ topicMessages = [], ...options }) => {
      const sent = await Promise.all(topicMessages.map((t) => send({ ...options, ...t })));
      return sent.flat();
    },
    disconnect: async () => {
      await producer.disconnect();
      if (adminReady) await admin.disconnect();
    },
  };
}

/**
 * Splits a send into one request per partition, each with its partition set as kafkajs's default
 * partitioner would choose it (murmur2 of the key, as Java clients do), sent side by side.
 *
 * Why: kafkajs 2.2.4 retries a multi-broker send only to the brokers that have not answered yet
 * (tulios/kafkajs#1303, PR #1798, unreleased). When the leader of some partitions dies mid-send and
 * their new leader is a broker that already acknowledged its own partitions, those records are never
 * sent again, yet send() resolves: acknowledged records lost. The Kafka drill lost 2 of 600 orders
 * that way. A request for a single partition involves a single broker, so its retry always goes to
 * the partition's current leader.
 */
export function partitionSafeSend(
  send: (record: ProducerRecord) => Promise<RecordMetadata[]>,
  partitionsOf: (topic: string) => Promise<PartitionMetadata[]>,
  partitioner = Partitioners.DefaultPartitioner(),
): (record: ProducerRecord) => Promise<RecordMetadata[]> {
  return async (record) => {
    const partitionMetadata = await partitionsOf(record.topic);
    const byPartition = new Map<number, Message[]>();
    for (const message of record.messages) {
      const partition = message.partition ?? partitioner({ topic: record.topic, partitionMetadata, message });
      byPartition.set(partition, [...(byPartition.get(partition) ?? []), { ...message, partition }]);
    }
    const sent = await Promise.all([...byPartition.values()].map((messages) => send({ ...record, messages })));
    return sent.flat();
  };
}

/**
 * A pool logged in with `url`, with the settings' TLS. A connection dying (the server crashed,
 * restarted or ended the session) never crashes the process, whether its client sits idle in the
 * pool or is checked out in the middle of a transaction: the operation using it fails (and is
 * retried by whoever owns it: an activity by Temporal, a record by the ingress), the pool drops the
 * dead client on release, and the next checkout opens a new connection. `onError` hears of each
 * dead connection once.
 */
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
  const onError = opts.onError ?? (() => undefined);
  // pg-pool listens for a client's 'error' only while the client is idle, and re-emits it on the
  // pool. A checked-out client (runIdempotent's transaction, say, while its work awaits the registry
  // or the card gateway) has no listener of pg-pool's, and pg emits 'error' on it when the server
  // sends FATAL (kill -9 of the postmaster: "terminating connection due to unexpected postmaster
  // exit") or the socket closes: an EventEmitter 'error' without a listener is thrown, and that
  // ends the whole process (a worker with every service's activities, say). Every client therefore
  // gets its own listener for its whole life. pg may emit twice for one death (the server's FATAL,
  // then the socket's end): reported once.
  pool.on('connect', (client) => {
    let reported = false;
    client.on('error', (err) => {
      if (reported) return;
      reported = true;
      onError(err);
    });
  });
  // Still needed: pg-pool emits an idle client's error on the pool, and an unheard 'error' throws.
  // Already reported by the client's own listener above, so not reported twice.
  pool.on('error', () => undefined);
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
