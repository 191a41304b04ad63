/**
 * The loyalty service's Kafka side: its own consumer group over `order.confirmed` and the topics of
 * events that undo a confirmed order. Each record goes through the one decoding path of every
 * consumer (EventCodec.decodeEvent: registry, validation, upcast of v1), then is applied in one
 * PostgreSQL transaction (LoyaltyLedger); its offset is resolved, and so committed, only after that
 * transaction committed or the record was written to the loyalty dead-letter topic. A failure that
 * is not the record's fault (database, registry) pauses the partition with backoff and retries the
 * same record: never skipped.
 */
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { logLevel } from 'kafkajs';

import { createKafka, createPgPool, createProducer, createRegistryClient } from '../../config/clients';
import type { Settings } from '../../config/settings';
import { EventCodec } from '../../events/codec';
import type { OrderConfirmed } from '../../events/rules';
import { TOPICS } from '../../events/topics';
import type { DeadLetterReason, SourceRecord } from '../../ingress/dead-letter';
import { sendDeadLetter } from '../../ingress/dead-letter';
import { PartitionRunner } from '../../kafka/partition-runner';
import { LagMonitor } from '../../observability/consumer-lag';
import type { Logger } from '../../observability/logger';
import type { Metrics } from '../../observability/metrics';
import { outboxWriterFor } from '../../outbox/outbox-config';
import { prefixedTopic } from '../../outbox/outbox-constants';
import { verifyRoles } from '../../provision/verify';
import { LOYALTY_CONSUMED_TOPICS, LOYALTY_DEAD_LETTER_TOPIC } from './loyalty-events';
import type { LoyaltyFact, LoyaltyOutcome } from './loyalty-ledger';
import { LoyaltyLedger } from './loyalty-ledger';

/** The loyalty role's settings: the shared sections plus its own. */
export type LoyaltyConfig = Settings<'loyalty'>;

/** The client's own retries cover short broker blips; longer outages surface as handler errors. */
const KAFKA_RETRY = { retries: 5, initialRetryTime: 200 };

/** The group, topics and dead-letter topic of the loyalty consumer under the settings' scope. */
export function loyaltySubscription(settings: Pick<LoyaltyConfig, 'common'>): {
  groupId: string;
  topics: string[];
  deadLetterTopic: string;
} {
  const names = settings.common.names;
  return {
    groupId: names.groups.loyalty,
    topics: LOYALTY_CONSUMED_TOPICS.map((t) => prefixedTopic(names.topicPrefix, t)),
    deadLetterTopic: prefixedTopic(names.topicPrefix, LOYALTY_DEAD_LETTER_TOPIC),
  };
}

/** Counts of what the consumer did since it started (the main job's summary reads them). */
export interface LoyaltyStats {
  outcomes: Record<LoyaltyOutcome | 'DEAD_LETTERED', number>;
  pointsAwarded: number;
  pointsRevoked: number;
  transientFailures: number;
}

export interface LoyaltyService {
  ledger: LoyaltyLedger;
  stats: LoyaltyStats;
  /** Graceful: finishes the record in flight per partition, commits, leaves the group, closes connections. */
  stop(): Promise<void>;
}

type Handled = { outcome: LoyaltyOutcome; points: number } | { outcome: 'DEAD_LETTERED'; reason: DeadLetterReason };

/**
 * Verifies (as its own role) what provisioning made for it, then joins its consumer group. With
 * `metrics`, counts what it handles and keeps its lag and dead-letter queue size current.
 */
export async function startLoyaltyService(
  settings: LoyaltyConfig,
  log: Logger,
  metrics?: Metrics,
): Promise<LoyaltyService> {
  const cfg = settings.roles.loyalty;
  const sub = loyaltySubscription(settings);
  await verifyRoles(['loyalty'], {
    schemaUrls: { loyalty: cfg.pgUrl },
    topics: [...sub.topics, sub.deadLetterTopic],
    kafka: settings.kafka,
    registry: settings.registry,
    pgSsl: settings.postgres.ssl,
  });
  const kafka = createKafka(settings.kafka, sub.groupId, { logLevel: logLevel.ERROR, retry: KAFKA_RETRY });
  const producer = createProducer(kafka, KAFKA_RETRY);
  await producer.connect();
  const pool = createPgPool(cfg.pgUrl, settings.postgres, {
    max: cfg.partitionConcurrency + 1,
    applicationName: 'kts-loyalty',
    onError: (err) => log.warn({ err }, 'loyalty connection failed'),
  });
  const ledger = new LoyaltyLedger(pool, outboxWriterFor(settings));
  const codec = new EventCodec(createRegistryClient(settings.registry));
  const consumer = new LoyaltyConsumer(kafka, codec, ledger, producer, sub, cfg, log, metrics);
  await consumer.start();
  const lag = metrics
    ? new LagMonitor(
        createKafka(settings.kafka, `${sub.groupId}-lag`),
        metrics,
        { groupId: sub.groupId, topics: sub.topics, deadLetterTopics: [sub.deadLetterTopic], intervalMs: 5_000 },
        log,
      )
    : undefined;
  lag?.start();
  let stopping: Promise<void> | undefined;
  return {
    ledger,
    stats: consumer.stats,
    stop: () =>
      (stopping ??= (async () => {
        await consumer.stop();
        await lag?.stop();
        await producer.disconnect();
        await pool.end();
      })()),
  };
}

class LoyaltyConsumer {
  private consumer: Consumer | undefined;
  private readonly runner: PartitionRunner;
  private readonly eventTypes: Map<string, string>;
  readonly stats: LoyaltyStats = {
    outcomes: {
      AWARDED: 0,
      NO_POINTS: 0,
      ALREADY_CONFIRMED: 0,
      UNDONE_BEFORE_CONFIRMED: 0,
      REVOKED: 0,
      NOTHING_TO_REVOKE: 0,
      ALREADY_UNDONE: 0,
      DUPLICATE_EVENT: 0,
      DEAD_LETTERED: 0,
    },
    pointsAwarded: 0,
    pointsRevoked: 0,
    transientFailures: 0,
  };

  constructor(
    private readonly kafka: Kafka,
    private readonly codec: EventCodec,
    private readonly ledger: LoyaltyLedger,
    private readonly producer: Producer,
    private readonly sub: ReturnType<typeof loyaltySubscription>,
    private readonly cfg: LoyaltyConfig['roles']['loyalty'],
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    // Scoped topic → the event type it carries (the topic's canonical name is its event type).
    this.eventTypes = new Map(sub.topics.map((t, i) => [t, LOYALTY_CONSUMED_TOPICS[i]!]));
    // One record at a time per partition, as before: loyalty has no per-partition concurrency setting.
    this.runner = new PartitionRunner(
      {
        handle: (source) => this.handleAndCount(source),
        onBlocked: (source, err, attempt, delayMs) => this.onBlocked(source, err, attempt, delayMs),
      },
      { backoff: cfg.backoff, maxInFlightPerPartition: 1 },
    );
  }

  async start(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.sub.groupId,
      sessionTimeout: this.cfg.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(this.cfg.sessionTimeoutMs / 3)),
      // A short long-poll, so a partition resumed after backoff is fetched again soon.
      maxWaitTimeInMs: 500,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) =>
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'loyalty consumer crashed'),
    );
    await consumer.connect();
    await consumer.subscribe({ topics: this.sub.topics, fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: this.cfg.partitionConcurrency,
      eachBatchAutoResolve: false,
      autoCommit: true,
      autoCommitInterval: 1000,
      eachBatch: (payload) => this.runner.runBatch(payload),
    });
  }

  /** Decodes, then applies in one transaction, or dead-letters; throws only for transient trouble. */
  private async handle(source: SourceRecord, eventType: string): Promise<Handled> {
    const decoded = await this.codec.decodeEvent(source.message.value, eventType);
    if (!decoded.ok) {
      await sendDeadLetter(this.producer, source, decoded, this.sub.groupId, this.sub.deadLetterTopic);
      return { outcome: 'DEAD_LETTERED', reason: decoded.reason };
    }
    const at = { topic: source.topic, partition: source.partition, offset: source.message.offset };
    const latest = decoded.latest as { eventId: string; eventType: string; orderId: string };
    const fact: LoyaltyFact =
      eventType === TOPICS.orderConfirmed
        ? { kind: 'confirmed', event: decoded.latest as unknown as OrderConfirmed }
        : { kind: 'undone', event: { eventId: latest.eventId, eventType: latest.eventType, orderId: latest.orderId } };
    return this.ledger.apply(fact, at);
  }

  /** Handles one record and counts it; throws only for transient trouble (the runner retries it). */
  private async handleAndCount(source: SourceRecord): Promise<void> {
    const eventType = this.eventTypes.get(source.topic) ?? 'unknown';
    const m = this.metrics;
    const began = performance.now();
    const result = await this.handle(source, eventType);
    this.stats.outcomes[result.outcome] += 1;
    m?.eventsConsumed.inc({ topic: source.topic, event_type: eventType });
    m?.processingSeconds.observe({ event_type: eventType }, (performance.now() - began) / 1000);
    if (result.outcome === 'DEAD_LETTERED') {
      m?.deadLetters.inc({ topic: source.topic, reason: result.reason });
      m?.eventErrors.inc({ event_type: eventType, error_type: result.reason });
      this.log.warn(
        { tp: `${source.topic}/${source.partition}`, offset: source.message.offset, reason: result.reason },
        'loyalty dead-lettered a poison record',
      );
    } else {
      if (result.outcome === 'AWARDED') this.stats.pointsAwarded += result.points;
      if (result.outcome === 'REVOKED') this.stats.pointsRevoked += result.points;
      m?.loyaltyOutcomes.inc({ outcome: result.outcome });
      if (result.points > 0) {
        m?.loyaltyPoints.inc({ direction: result.outcome === 'AWARDED' ? 'awarded' : 'revoked' }, result.points);
      }
    }
  }

  private onBlocked(source: SourceRecord, err: unknown, attempt: number, delayMs: number): void {
    const eventType = this.eventTypes.get(source.topic) ?? 'unknown';
    this.stats.transientFailures += 1;
    this.metrics?.eventErrors.inc({ event_type: eventType, error_type: (err as Error).name || 'Error' });
    this.log.warn(
      { tp: `${source.topic}/${source.partition}`, offset: source.message.offset, attempt, delayMs, err },
      'loyalty record not handled; pausing the partition',
    );
  }

  async stop(): Promise<void> {
    this.runner.stop();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) await consumer.disconnect();
  }
}
