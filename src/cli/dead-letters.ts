/**
 * Reading and replaying dead letters. Replay puts the original key, value and headers back on the
 * original topic, so the record goes through the ingress again, dedupe included: replaying a record
 * twice, or one whose order already has a saga, starts nothing new.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';

import { createProducer } from '../config/clients';
import { deadLetterTopic } from '../events/topics';
import type { DeadLetterView } from '../ingress/dead-letter';
import { readDeadLetter, replayHeaders } from '../ingress/dead-letter';

/** Every record on `topic` up to its high watermarks at call time, read without a consumer group. */
export async function readTopicSnapshot(
  kafka: Kafka,
  topic: string,
): Promise<{ partition: number; message: KafkaMessage }[]> {
  const admin = kafka.admin();
  await admin.connect();
  let offsets: { partition: number; low: string; high: string }[];
  try {
    if (!(await admin.listTopics()).includes(topic)) return [];
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const remaining = new Map(offsets.filter((o) => o.high !== o.low).map((o) => [o.partition, BigInt(o.high)]));
  const out: { partition: number; message: KafkaMessage }[] = [];
  if (remaining.size === 0) return out;
  // A throwaway group that never commits: reading leaves no trace on the cluster but its name.
  const consumer = kafka.consumer({ groupId: `dlq-reader-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachMessage: ({ partition, message }) => {
            const high = remaining.get(partition);
            if (high !== undefined && BigInt(message.offset) < high) out.push({ partition, message });
            if (high !== undefined && BigInt(message.offset) + 1n >= high) remaining.delete(partition);
            if (remaining.size === 0) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.message.offset) - BigInt(b.message.offset)));
}

/** The dead letters of a source topic, oldest first per partition. */
/**
 * The record a dead letter stands for. Dead-lettering is at least once (a crash right after the
 * write writes it again), so two dead letters of one source position are copies of one.
 */
function sourcePosition(v: DeadLetterView): string {
  return `${v.originalTopic}/${v.originalPartition}/${v.originalOffset}`;
}

/** Keeps the first dead letter of each source position. */
function firstCopies<T>(items: T[], view: (t: T) => DeadLetterView): T[] {
  const seen = new Set<string>();
  return items.filter((t) => {
    const key = sourcePosition(view(t));
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The dead letters of a source topic, one per source record (later copies of the same record left out). */
export async function listDeadLetters(kafka: Kafka, sourceTopic: string): Promise<DeadLetterView[]> {
  const records = await readTopicSnapshot(kafka, deadLetterTopic(sourceTopic));
  return firstCopies(
    records.map((r) => readDeadLetter(r.partition, r.message)),
    (v) => v,
  );
}

export interface ReplaySelection {
  /** Only these dead letters, as `<partition>:<offset>`; all when absent. */
  positions?: string[];
  /** Only dead letters with this reason. */
  reason?: string;
  dryRun?: boolean;
}

/**
 * Replays selected dead letters onto their original topic (acks=all). Returns what was (or, in a dry
 * run, would be) replayed. Safe to repeat: the ingress dedupes replayed events like any other.
 */
export async function replayDeadLetters(
  kafka: Kafka,
  sourceTopic: string,
  selection: ReplaySelection,
): Promise<DeadLetterView[]> {
  const dlq = deadLetterTopic(sourceTopic);
  const wanted = selection.positions ? new Set(selection.positions) : undefined;
  // One replay per source record, however many copies a crash left on the dead-letter topic.
  const records = firstCopies(await readTopicSnapshot(kafka, dlq), (r) =>
    readDeadLetter(r.partition, r.message),
  ).filter((r) => {
    const view = readDeadLetter(r.partition, r.message);
    if (wanted && !wanted.has(`${r.partition}:${r.message.offset}`)) return false;
    if (selection.reason && view.reason !== selection.reason) return false;
    return true;
  });
  const views = records.map((r) => readDeadLetter(r.partition, r.message));
  if (selection.dryRun || records.length === 0) return views;
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    const byTopic = new Map<string, { key: Buffer | null; value: Buffer | null; headers: KafkaMessage['headers'] }[]>();
    records.forEach((r, i) => {
      const target = views[i]?.originalTopic || sourceTopic;
      const list = byTopic.get(target) ?? [];
      list.push({ key: r.message.key, value: r.message.value, headers: replayHeaders(dlq, r.partition, r.message) });
      byTopic.set(target, list);
    });
    for (const [topic, messages] of byTopic) await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
  return views;
}
