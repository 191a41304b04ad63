/**
 * Consumer lag and dead-letter queue size, computed from Kafka offsets every few seconds: two admin
 * calls per topic (committed offsets of the group, watermarks of the topic), cheap next to the
 * records themselves, and nothing on the record path.
 */
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';

import type { Metrics } from './metrics';

export interface LagMonitorOptions {
  groupId: string;
  /** Topics the group consumes: lag per partition. */
  topics: string[];
  /** Dead-letter topics: their size. */
  deadLetterTopics?: string[];
  intervalMs: number;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  lag: number;
}

/**
 * Lag per partition: high watermark minus the committed offset. A partition the group never
 * committed is consumed from its low watermark (the ingress reads from the beginning), so all of it
 * is lag.
 */
export async function fetchConsumerLag(admin: Admin, groupId: string, topics: string[]): Promise<PartitionLag[]> {
  const committed = await admin.fetchOffsets({ groupId, topics });
  const out: PartitionLag[] = [];
  for (const topic of topics) {
    const marks = await admin.fetchTopicOffsets(topic);
    const byPartition = new Map(
      (committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
    );
    for (const m of marks) {
      const at = byPartition.get(m.partition) ?? -1;
      const from = at >= 0 ? at : Number(m.low);
      out.push({ topic, partition: m.partition, lag: Math.max(0, Number(m.high) - from) });
    }
  }
  return out;
}

/** Records held in a topic: high minus low watermark over its partitions. */
export async function fetchTopicSize(admin: Admin, topic: string): Promise<number> {
  const marks = await admin.fetchTopicOffsets(topic);
  return marks.reduce((n, m) => n + Number(m.high) - Number(m.low), 0);
}

/**
 * Keeps `kts_consumer_lag` and `kts_dead_letter_queue_size` current. `refresh()` may be awaited
 * directly (tests, the status of a stopped consumer); `start()` repeats it until `stop()`.
 */
export class LagMonitor {
  private admin: Admin | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly metrics: Metrics,
    private readonly options: LagMonitorOptions,
    private readonly log?: Logger,
    /** Extra work on the same schedule (e.g. counting sagas in flight), failures logged like ours. */
    private readonly alsoRefresh?: () => Promise<void>,
  ) {}

  /** Computes the gauges once. */
  async refresh(): Promise<void> {
    this.admin ??= this.kafka.admin();
    const admin = this.admin;
    await admin.connect(); // a no-op once connected
    const { groupId, topics, deadLetterTopics = [] } = this.options;
    for (const p of await fetchConsumerLag(admin, groupId, topics)) {
      this.metrics.consumerLag.set({ group: groupId, topic: p.topic, partition: String(p.partition) }, p.lag);
    }
    for (const topic of deadLetterTopics) {
      this.metrics.deadLetterQueueSize.set({ topic }, await fetchTopicSize(admin, topic));
    }
    await this.alsoRefresh?.();
  }

  /** Refreshes now and then every `intervalMs`; a failed round is logged and the next one tries again. */
  start(): void {
    const tick = () => {
      this.running = this.refresh()
        .catch((err: unknown) => this.log?.warn({ err }, 'could not refresh consumer lag'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    tick();
  }

  /** Stops the schedule, waits for a round in progress, and disconnects. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.admin?.disconnect();
    this.admin = undefined;
  }
}
