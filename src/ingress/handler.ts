/**
 * What the ingress does with one record. Every path ends in a durable fact (a saga started or found,
 * a signal delivered, a ledger row, or a dead letter) before it returns, so the caller may commit
 * the offset as soon as this resolves. Anything that throws is transient: the caller retries the
 * same record later and must not commit past it.
 */
import { SpanKind } from '@opentelemetry/api';

import type { EventCodec } from '../events/codec';
import type { IngressEventType } from '../events/rules';
import type { Correlation, Logger } from '../observability/logger';
import { withCorrelation } from '../observability/logger';
import { contextFromKafkaHeaders, currentTraceId, inSpan } from '../observability/tracing';
import { orderWorkflowId } from '../shared/saga-contract';
import type { DeadLetterCause, DeadLetterReason, SourceRecord } from './dead-letter';
import { IngressFailure } from './dead-letter';
import type { EventSource, IngressLedger, LedgerOutcome } from './ledger';
import type { SagaGateway } from './saga-gateway';

export type HandleOutcome = LedgerOutcome | 'DUPLICATE_EVENT' | 'DEAD_LETTERED';

export interface HandleResult {
  outcome: HandleOutcome;
  reason?: DeadLetterReason;
}

export interface IngressHandlerDeps {
  codec: EventCodec;
  ledger: IngressLedger;
  gateway: SagaGateway;
  /** Resolves once the dead letter is stored (acks=all). */
  deadLetter: (source: SourceRecord, cause: DeadLetterCause) => Promise<void>;
  topics: { placed: string; cancelled: string };
  /** One line per handled record, carrying orderId, eventId, workflowId and traceId. */
  log?: Logger;
}

export class IngressHandler {
  private readonly roles: Map<string, IngressEventType>;

  constructor(private readonly deps: IngressHandlerDeps) {
    this.roles = new Map([
      [deps.topics.placed, 'order.placed'],
      [deps.topics.cancelled, 'order.cancelled'],
    ]);
  }

  /** The event type a subscribed topic carries, for labelling metrics of records not yet decoded. */
  /**
   * After the handler failed on `source`: if an operator released the record (`orders blocked
   * dead-letter`), writes it to the dead-letter topic with reason HandlerError, unless a previous
   * attempt already did (crash before the offset commit), and returns true so the partition moves
   * on. False when no release was ordered: the record is retried as before.
   */
  async releaseIfOrdered(source: SourceRecord, error: unknown): Promise<boolean> {
    const at: EventSource = { topic: source.topic, partition: source.partition, offset: source.message.offset };
    const release = await this.deps.ledger.release(at);
    if (!release) return false;
    if (!release.deadLetteredAt) {
      const last = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      await this.deps.deadLetter(source, {
        reason: IngressFailure.HandlerError,
        errorType: 'Ingress',
        message: `released by ${release.operator} (${release.reason}); last handler error: ${last}`,
      });
      await this.deps.ledger.markReleased(at);
    }
    this.deps.log?.warn(
      { topic: at.topic, partition: at.partition, offset: at.offset, operator: release.operator },
      'released a record the handler kept failing on to the dead-letter topic',
    );
    return true;
  }

  eventTypeOf(topic: string): IngressEventType | undefined {
    return this.roles.get(topic);
  }

  /**
   * Handles one record. Idempotent: handling the same record again (after a crash or rebalance
   * before its offset was committed) finds it in the ledger or in Temporal and starts nothing new.
   */
  async handle(source: SourceRecord): Promise<HandleResult> {
    const { topic, partition } = source;
    const { offset } = source.message;
    // The producer's trace (traceparent header) continues here, and through the Temporal client's
    // interceptor into the saga: one trace per order.
    return inSpan(
      `ingress ${this.roles.get(topic) ?? topic}`,
      {
        kind: SpanKind.CONSUMER,
        parent: contextFromKafkaHeaders(source.message.headers),
        attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': topic, partition, offset },
      },
      async (span) => {
        const ids: Pick<Correlation, 'orderId' | 'eventId'> = {};
        try {
          const result = await this.handleRecord(source, ids);
          span.setAttribute('outcome', result.outcome);
          const workflowId = ids.orderId === undefined ? undefined : orderWorkflowId(ids.orderId);
          if (this.deps.log) {
            withCorrelation(this.deps.log, { ...ids, workflowId, traceId: currentTraceId() }).info(
              { topic, partition, offset, outcome: result.outcome, reason: result.reason },
              'record handled',
            );
          }
          return result;
        } finally {
          span.setAttributes({ ...ids });
        }
      },
    );
  }

  private async handleRecord(
    source: SourceRecord,
    ids: Pick<Correlation, 'orderId' | 'eventId'>,
  ): Promise<HandleResult> {
    const role = this.roles.get(source.topic);
    if (!role) throw new Error(`the ingress is not subscribed to ${source.topic}`);
    const decoded = await this.deps.codec.decode(source.message.value, role);
    if (!decoded.ok) return this.deadLetter(source, decoded);
    const { value } = decoded;
    ids.orderId = value.event.orderId;
    ids.eventId = value.event.eventId;
    const key = source.message.key?.toString();
    if (key !== value.event.orderId) {
      return this.deadLetter(source, {
        reason: IngressFailure.KeyMismatch,
        errorType: 'Ingress',
        message: `record key ${JSON.stringify(key ?? null)} is not the orderId ${JSON.stringify(value.event.orderId)}`,
      });
    }
    const at: EventSource = { topic: source.topic, partition: source.partition, offset: source.message.offset };
    const entry = { eventId: value.event.eventId, eventType: value.eventType, orderId: value.event.orderId };
    const { ledger, gateway } = this.deps;
    const seen = await ledger.lookup(entry.eventId, entry.orderId);
    if (seen.eventSeen) return { outcome: 'DUPLICATE_EVENT' };

    if (value.eventType === 'order.placed') {
      if (seen.orderStarted) {
        await ledger.record(entry, 'DUPLICATE_ORDER', at);
        return { outcome: 'DUPLICATE_ORDER' };
      }
      const started = await gateway.start(value.event, value.sourceVersion);
      // Common case, one round trip: no cancel pending, ledger row written (see the method for why
      // that is safe). A pending cancel is signalled before the ledger row: a crash in between
      // redelivers the event, which then signals again (the saga's cancel flag is idempotent)
      // instead of losing the cancel.
      const pending = await ledger.recordStartedUnlessCancelPending(entry, started.workflowId, started.outcome, at);
      if (pending !== undefined) {
        await gateway.cancel(entry.orderId, pending);
        await ledger.recordStarted(entry, started.workflowId, started.outcome, at);
      }
      return { outcome: started.outcome };
    }

    const signalled = await gateway.cancel(entry.orderId, value.event.reason);
    if (signalled === 'SIGNALLED') {
      await ledger.record(entry, 'SIGNALLED', at);
      return { outcome: 'SIGNALLED' };
    }
    if (seen.orderStarted) {
      // The saga already finished: a cancel now has nothing to stop.
      await ledger.record(entry, 'CANCEL_TOO_LATE', at);
      return { outcome: 'CANCEL_TOO_LATE' };
    }
    // order.cancelled and order.placed are different topics, so a cancel may overtake its order.
    await ledger.recordPendingCancel(entry, value.event.reason, at);
    // A start that slipped in between our signal and the row above did not see the row: signal again.
    await gateway.cancel(entry.orderId, value.event.reason);
    return { outcome: 'CANCEL_PENDING' };
  }

  private async deadLetter(source: SourceRecord, cause: DeadLetterCause): Promise<HandleResult> {
    await this.deps.deadLetter(source, cause);
    return { outcome: 'DEAD_LETTERED', reason: cause.reason };
  }
}
