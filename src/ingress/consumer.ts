/**
 * The Kafka side of the ingress. Partitions are handled concurrently; within a partition the shared
 * PartitionRunner (src/kafka/partition-runner.ts) handles records of different orders side by side
 * when configured to, one order's records strictly in order. An offset is resolved (and so
 * committed) only once the handler returned for it and every record below it, i.e. once they were
 * durably handled. A handler error pauses just that partition with exponential backoff; the record
 * is fetched again on resume, never skipped.
 */
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';

import { PartitionRunner } from '../kafka/partition-runner';
import type { Metrics } from '../observability/metrics';
import type { SourceRecord } from './dead-letter';
import type { HandleOutcome, IngressHandler } from './handler';

export interface IngressConsumerOptions {
  groupId: string;
  topics: string[];
  partitionConcurrency: number;
  /** Records of one partition handled side by side, never two of one order at once (default 1). */
  maxInFlightPerPartition?: number;
  backoff: { initialMs: number; maxMs: number };
  sessionTimeoutMs: number;
  /** How often resolved offsets are committed while running; shutdown and rebalance commit too. */
  commitIntervalMs?: number;
  fromBeginning?: boolean;
}

export interface IngressStats {
  handled: Record<HandleOutcome, number>;
  /** Handler failures that paused a partition (each was retried later). */
  transientFailures: number;
}

export { backoffDelay } from '../kafka/partition-runner';

function tpOf(source: SourceRecord): string {
  return `${source.topic}/${source.partition}`;
}

/** The labels of the kts_ingress_blocked_record_attempts gauge for a record. */
function gaugeLabels(source: SourceRecord): { topic: string; partition: string; offset: string } {
  return { topic: source.topic, partition: String(source.partition), offset: source.message.offset };
}

export class IngressConsumer {
  private consumer: Consumer | undefined;
  private readonly runner: PartitionRunner;
  readonly stats: IngressStats = {
    handled: {
      STARTED: 0,
      ALREADY_STARTED: 0,
      DUPLICATE_ORDER: 0,
      DUPLICATE_EVENT: 0,
      SIGNALLED: 0,
      CANCEL_PENDING: 0,
      CANCEL_TOO_LATE: 0,
      DEAD_LETTERED: 0,
    },
    transientFailures: 0,
  };

  constructor(
    private readonly kafka: Kafka,
    private readonly handler: IngressHandler,
    private readonly options: IngressConsumerOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.runner = new PartitionRunner(
      {
        handle: (source) => this.handle(source),
        release: (source, err) => this.release(source, err),
        onBlocked: (source, err, attempt, delayMs) => this.onBlocked(source, err, attempt, delayMs),
        onUnblocked: (at) => this.metrics?.blockedRecord.remove({ ...at, partition: String(at.partition) }),
      },
      { backoff: options.backoff, maxInFlightPerPartition: options.maxInFlightPerPartition },
    );
  }

  /** Joins the group and starts consuming; resolves once the consumer runs. */
  async start(): Promise<void> {
    const o = this.options;
    const consumer = this.kafka.consumer({
      groupId: o.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(o.sessionTimeoutMs / 3)),
      // A short long-poll, so a partition resumed after backoff is fetched again soon.
      maxWaitTimeInMs: 500,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) =>
      this.log.info({ assignment: e.payload.memberAssignment }, 'joined consumer group'),
    );
    consumer.on(consumer.events.CRASH, (e) =>
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed'),
    );
    await consumer.connect();
    await consumer.subscribe({ topics: o.topics, fromBeginning: o.fromBeginning ?? true });
    await consumer.run({
      partitionsConsumedConcurrently: o.partitionConcurrency,
      eachBatchAutoResolve: false,
      autoCommit: true,
      autoCommitInterval: o.commitIntervalMs ?? 1000,
      eachBatch: (payload) => this.runner.runBatch(payload),
    });
  }

  private async handle(source: SourceRecord): Promise<void> {
    const eventType = this.handler.eventTypeOf(source.topic) ?? 'unknown';
    const m = this.metrics;
    const began = performance.now();
    const result = await this.handler.handle(source);
    this.stats.handled[result.outcome] += 1;
    // Counted here, once the record is durably handled, so a retried record is one record.
    m?.eventsConsumed.inc({ topic: source.topic, event_type: eventType });
    m?.processingSeconds.observe({ event_type: eventType }, (performance.now() - began) / 1000);
    if (result.outcome === 'DEAD_LETTERED') {
      const reason = result.reason ?? 'unknown';
      m?.deadLetters.inc({ topic: source.topic, reason });
      m?.eventErrors.inc({ event_type: eventType, error_type: reason });
      this.log.warn(
        { tp: tpOf(source), offset: source.message.offset, reason: result.reason },
        'dead-lettered a poison record',
      );
    }
  }

  private async release(source: SourceRecord, err: unknown): Promise<boolean> {
    const released = await this.handler.releaseIfOrdered(source, err).catch((releaseErr: unknown) => {
      this.log.warn(
        { tp: tpOf(source), offset: source.message.offset, err: releaseErr },
        'could not check for an operator release',
      );
      return false;
    });
    if (released) {
      const eventType = this.handler.eventTypeOf(source.topic) ?? 'unknown';
      this.stats.handled.DEAD_LETTERED += 1;
      this.metrics?.deadLetters.inc({ topic: source.topic, reason: 'HandlerError' });
      this.metrics?.eventErrors.inc({ event_type: eventType, error_type: 'HandlerError' });
    }
    return released;
  }

  private onBlocked(source: SourceRecord, err: unknown, attempt: number, delayMs: number): void {
    const eventType = this.handler.eventTypeOf(source.topic) ?? 'unknown';
    this.stats.transientFailures += 1;
    this.metrics?.eventErrors.inc({ event_type: eventType, error_type: (err as Error).name || 'Error' });
    // Visible while it lasts: which record blocks the partition and how often it failed.
    this.metrics?.blockedRecord.set(gaugeLabels(source), attempt + 1);
    this.log.warn(
      { tp: tpOf(source), offset: source.message.offset, attempt, delayMs, errorType: (err as Error).name, err },
      'record not handled; pausing the partition',
    );
  }

  /**
   * Stops fetching, lets the record in flight on each partition finish, commits what was handled and
   * leaves the group (so its partitions move to another member at once). Safe to call twice.
   */
  async stop(): Promise<void> {
    this.runner.stop();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) await consumer.disconnect();
  }
}
