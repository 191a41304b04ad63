/**
 * Dead letters: a poison record is copied, key, value and headers untouched, to `<topic>.dlq` with
 * headers saying why it was refused and where it came from, so it can be inspected and replayed.
 */
import type { IHeaders, KafkaMessage, Producer } from 'kafkajs';

import type { DecodeErrorType, DecodeFailure } from '../events/codec';
import { deadLetterTopic } from '../events/topics';

/** Header names on dead-letter records. Values are UTF-8 text. */
export const DLQ_HEADERS = {
  /** A {@link DeadLetterReason}: what is wrong with the record. */
  reason: 'dlq-reason',
  /** Which layer refused it: a {@link DecodeErrorType}, `Ingress` or `Loyalty`. */
  errorType: 'dlq-error-type',
  errorMessage: 'dlq-error-message',
  originalTopic: 'dlq-original-topic',
  originalPartition: 'dlq-original-partition',
  originalOffset: 'dlq-original-offset',
  /** The original record's timestamp (epoch ms, as Kafka gives it). */
  originalTimestamp: 'dlq-original-timestamp',
  deadLetteredAt: 'dlq-dead-lettered-at',
  consumerGroup: 'dlq-consumer-group',
} as const;

/** Set on a record the `orders dlq replay` command puts back on its original topic. */
export const REPLAY_HEADERS = {
  /** `<dlq topic>/<partition>/<offset>` of the dead letter it came from. */
  replayedFrom: 'dlq-replayed-from',
} as const;

/** Reasons beyond the codec's: the record decoded but does not fit the topic's contract. */
export const IngressFailure = {
  /** Kafka key differs from the event's orderId, which would break per-order ordering. */
  KeyMismatch: 'KeyMismatch',
  /** The handler kept failing on the record (a bug, an unforeseen case) and an operator released it. */
  HandlerError: 'HandlerError',
} as const;

export type DeadLetterReason = DecodeFailure | (typeof IngressFailure)[keyof typeof IngressFailure];

export interface DeadLetterCause {
  reason: DeadLetterReason;
  errorType: DecodeErrorType | 'Ingress' | 'Loyalty';
  message: string;
}

export interface SourceRecord {
  topic: string;
  partition: number;
  message: Pick<KafkaMessage, 'key' | 'value' | 'headers' | 'offset' | 'timestamp'>;
}

// Kafka headers have no size limit of their own, but a huge zod report helps nobody.
const MAX_MESSAGE_CHARS = 2000;

/** The dead-letter message for a poison record; the original headers are kept alongside ours. */
export function deadLetterMessage(source: SourceRecord, cause: DeadLetterCause, groupId: string, now = new Date()) {
  const headers: IHeaders = { ...(source.message.headers ?? {}) };
  headers[DLQ_HEADERS.reason] = cause.reason;
  headers[DLQ_HEADERS.errorType] = cause.errorType;
  headers[DLQ_HEADERS.errorMessage] = cause.message.slice(0, MAX_MESSAGE_CHARS);
  headers[DLQ_HEADERS.originalTopic] = source.topic;
  headers[DLQ_HEADERS.originalPartition] = String(source.partition);
  headers[DLQ_HEADERS.originalOffset] = source.message.offset;
  headers[DLQ_HEADERS.originalTimestamp] = source.message.timestamp;
  headers[DLQ_HEADERS.deadLetteredAt] = now.toISOString();
  headers[DLQ_HEADERS.consumerGroup] = groupId;
  return { key: source.message.key, value: source.message.value, headers };
}

/**
 * Writes a dead letter and resolves once the broker has it (acks=all), which is what lets the caller
 * commit the original offset. At least once: a crash right after the write may write it again.
 * `topic` defaults to `<source topic>.dlq`; a consumer group that reads topics other groups read
 * too (the loyalty service) passes a dead-letter topic of its own.
 */
export async function sendDeadLetter(
  producer: Producer,
  source: SourceRecord,
  cause: DeadLetterCause,
  groupId: string,
  topic: string = deadLetterTopic(source.topic),
): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: [deadLetterMessage(source, cause, groupId)],
  });
}

/** A dead letter as the CLI shows it. */
export interface DeadLetterView {
  partition: number;
  offset: string;
  key: string | null;
  reason: string;
  errorType: string;
  errorMessage: string;
  originalTopic: string;
  originalPartition: number;
  originalOffset: string;
  originalTimestamp: string;
  deadLetteredAt: string;
  valueBytes: number;
}

function header(headers: IHeaders | undefined, name: string): string {
  const v = headers?.[name];
  if (v === undefined) return '';
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? '' : first.toString();
}

export function readDeadLetter(partition: number, message: KafkaMessage): DeadLetterView {
  const h = message.headers;
  return {
    partition,
    offset: message.offset,
    key: message.key?.toString() ?? null,
    reason: header(h, DLQ_HEADERS.reason),
    errorType: header(h, DLQ_HEADERS.errorType),
    errorMessage: header(h, DLQ_HEADERS.errorMessage),
    originalTopic: header(h, DLQ_HEADERS.originalTopic),
    originalPartition: Number(header(h, DLQ_HEADERS.originalPartition)),
    originalOffset: header(h, DLQ_HEADERS.originalOffset),
    originalTimestamp: header(h, DLQ_HEADERS.originalTimestamp),
    deadLetteredAt: header(h, DLQ_HEADERS.deadLetteredAt),
    valueBytes: message.value?.length ?? 0,
  };
}

/** Headers of a replayed record: the original's, without our dead-letter ones, plus where it came from. */
export function replayHeaders(dlqTopic: string, partition: number, message: KafkaMessage): IHeaders {
  const dlqNames = new Set<string>(Object.values(DLQ_HEADERS));
  const out: IHeaders = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) if (!dlqNames.has(k) && v !== undefined) out[k] = v;
  out[REPLAY_HEADERS.replayedFrom] = `${dlqTopic}/${partition}/${message.offset}`;
  return out;
}
