/**
 * The Kafka side of the ingress. Partitions are handled concurrently, records within a partition
 * strictly in order. An offset is resolved (and so committed) only after the handler returned, i.e.
 * after the record was durably handled. A handler error pauses just that partition with exponential
 * backoff; the record is fetched again on resume, never skipped.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';

import type { Metrics } from '../observability/metrics';
import type { HandleOutcome, IngressHandler } from './handler';

export interface IngressConsumerOptions {
  groupId: string;
  topics: string[];
  partitionConcurrency: number;
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

/** Exponential backoff with full jitter, so paused partitions do not all retry in lock-step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(initialMs, Math.round(ceiling * random()));
}

export class IngressConsumer {
  private consumer: Consumer | undefined;
  private readonly attempts = new Map<string, number>();
  /** The position each partition is blocked at, for the kts_ingress_blocked_record_attempts gauge. */
  private readonly blocked = new Map<string, { topic: string; partition: string; offset: string }>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
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
  ) {}

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
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const tp = `${batch.topic}/${batch.partition}`;
    const eventType = this.handler.eventTypeOf(batch.topic) ?? 'unknown';
    const m = this.metrics;
    for (const message of batch.messages) {
      if (!p.isRunning() || p.isStale()) break;
      const began = performance.now();
      try {
        const result = await this.handler.handle({ topic: batch.topic, partition: batch.partition, message });
        this.stats.handled[result.outcome] += 1;
        // Counted here, once the record is durably handled, so a retried record is one record.
        m?.eventsConsumed.inc({ topic: batch.topic, event_type: eventType });
        m?.processingSeconds.observe({ event_type: eventType }, (performance.now() - began) / 1000);
        if (result.outcome === 'DEAD_LETTERED') {
          const reason = result.reason ?? 'unknown';
          m?.deadLetters.inc({ topic: batch.topic, reason });
          m?.eventErrors.inc({ event_type: eventType, error_type: reason });
          this.log.warn({ tp, offset: message.offset, reason: result.reason }, 'dead-lettered a poison record');
        }
      } catch (err) {
        if (!p.isRunning()) break; // shutting down: the record stays uncommitted for whoever comes next
        const source = { topic: batch.topic, partition: batch.partition, message };
        const released = await this.handler.releaseIfOrdered(source, err).catch((releaseErr: unknown) => {
          this.log.warn({ tp, offset: message.offset, err: releaseErr }, 'could not check for an operator release');
          return false;
        });
        if (released) {
          this.stats.handled.DEAD_LETTERED += 1;
          m?.deadLetters.inc({ topic: batch.topic, reason: 'HandlerError' });
          m?.eventErrors.inc({ event_type: eventType, error_type: 'HandlerError' });
          this.attempts.delete(tp);
          const wasBlocked = this.blocked.get(tp);
          if (wasBlocked) m?.blockedRecord.remove(wasBlocked);
          this.blocked.delete(tp);
          p.resolveOffset(message.offset);
          await p.heartbeat();
          continue;
        }
        this.stats.transientFailures += 1;
        m?.eventErrors.inc({ event_type: eventType, error_type: (err as Error).name || 'Error' });
        const attempt = this.attempts.get(tp) ?? 0;
        this.attempts.set(tp, attempt + 1);
        // Visible while it lasts: which record blocks the partition and how often it failed.
        const position = { topic: batch.topic, partition: String(batch.partition), offset: message.offset };
        m?.blockedRecord.set(position, attempt + 1);
        this.blocked.set(tp, position);
        const delay = backoffDelay(attempt, this.options.backoff.initialMs, this.options.backoff.maxMs);
        this.log.warn(
          { tp, offset: message.offset, attempt, delayMs: delay, errorType: (err as Error).name, err },
          'record not handled; pausing the partition',
        );
        const resume = p.pause();
        const timer = setTimeout(() => {
          this.resumeTimers.delete(timer);
          resume();
        }, delay);
        this.resumeTimers.add(timer);
        break; // unresolved: after resume the partition is fetched again from this record
      }
      this.attempts.delete(tp);
      const wasBlocked = this.blocked.get(tp);
      if (wasBlocked) {
        m?.blockedRecord.remove(wasBlocked);
        this.blocked.delete(tp);
      }
      p.resolveOffset(message.offset);
      await p.heartbeat();
    }
    if (p.isRunning()) {
      await p.commitOffsetsIfNecessary();
    } else {
      // Graceful shutdown: whatever was handled is committed before the group is left.
      await p.commitOffsetsIfNecessary(p.uncommittedOffsets());
    }
  }

  /**
   * Stops fetching, lets the record in flight on each partition finish, commits what was handled and
   * leaves the group (so its partitions move to another member at once). Safe to call twice.
   */
  async stop(): Promise<void> {
    for (const t of this.resumeTimers) clearTimeout(t);
    this.resumeTimers.clear();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) await consumer.disconnect();
  }
}
