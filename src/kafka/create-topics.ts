/**
 * Topic creation that waits for the topic to be usable. kafkajs's own `waitForLeaders` gives up at
 * the first UNKNOWN_TOPIC_OR_PARTITION, which is what a KRaft broker answers for a topic its metadata
 * cache has not applied yet, just after CreateTopics returned: a moment to wait, not a failure.
 */
import type { Admin, ITopicConfig } from 'kafkajs';

/** Metadata errors that only mean "not propagated yet". */
const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Creates `topics` (false when they all existed already, as kafkajs reports it) and resolves once
 * every partition of each has a leader; fails after `timeoutMs` naming the topics.
 */
export async function createTopicsAndWait(
  admin: Pick<Admin, 'createTopics' | 'fetchTopicMetadata'>,
  topics: ITopicConfig[],
  timeoutMs = 30_000,
): Promise<boolean> {
  if (topics.length === 0) return false;
  const created = await admin.createTopics({ topics, waitForLeaders: false });
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  let last = 'no metadata yet';
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: names });
      const waiting = names.filter((name) => {
        const partitions = meta.topics.find((t) => t.name === name)?.partitions ?? [];
        return partitions.length === 0 || partitions.some((p) => p.leader < 0);
      });
      if (waiting.length === 0) return created;
      last = `no leader yet for ${waiting.join(', ')}`;
    } catch (err) {
      const type = (err as { type?: unknown }).type;
      if (typeof type !== 'string' || !NOT_YET.has(type)) throw err;
      last = type;
    }
    if (Date.now() > deadline) {
      throw new Error(`topics ${names.join(', ')} not ready ${timeoutMs} ms after creation (${last})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
