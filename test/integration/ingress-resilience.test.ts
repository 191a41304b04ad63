import { placedEvent } from '../../src/cli/order-events';
import { deadLetterTopic } from '../../src/events/topics';
import {
  db,
  ledgerOutcomes,
  newScope,
  produce,
  readAll,
  startScopedIngress,
  startStubSagaWorker,
  stubRuns,
  terminateScopeSagas,
} from '../support/ingress-harness';
import { freePort } from '../support/private-temporal';
import { kafkaClient, stackConfig } from '../support/stack';
import { TcpProxy } from '../support/tcp-proxy';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

afterAll(async () => {
  await terminateScopeSagas();
  await db.end();
});

/** Committed offsets of a group, per partition of a topic (-1 when nothing committed). */
async function committed(groupId: string, topic: string): Promise<Map<number, number>> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

describe('ingress resilience', () => {
  it('pauses and retries while the registry is unreachable, never dead-letters, and catches up when it returns', async () => {
    const scope = await newScope('it_registry_down', 2);
    // The ingress reaches the registry only through this proxy, which starts cut.
    const proxy = new TcpProxy(await freePort(), { host: '127.0.0.1', port: stackConfig.ports.registry });
    const events = Array.from({ length: 10 }, () => placedEvent({ version: 1 }));
    await produce(
      scope.placed,
      events.map((event) => ({ event })),
    );
    const worker = await startStubSagaWorker(scope);
    const ingress = await startScopedIngress(scope, {
      KTS_REGISTRY_PORT: String(proxy.port),
      KTS_INGRESS_BACKOFF_INITIAL_MS: '100',
      KTS_INGRESS_BACKOFF_MAX_MS: '1000',
    });
    try {
      await waitUntil(
        'retries',
        () => Promise.resolve(ingress.consumer.stats.transientFailures),
        (n) => n >= 6,
      );
      expect(ingress.consumer.stats.handled.DEAD_LETTERED).toBe(0);
      expect(await ledgerOutcomes(scope)).toEqual({});
      expect([...(await committed(scope.groupId, scope.placed)).values()].every((o) => o <= 0)).toBe(true);
      await proxy.open();
      await waitUntil(
        '10 sagas',
        () => stubRuns(scope),
        (r) => r.length === 10,
      );
    } finally {
      await ingress.stop();
      await worker.stop();
      await proxy.cut();
    }
    expect(await ledgerOutcomes(scope)).toEqual({ STARTED: 10 });
    expect(await readAll(deadLetterTopic(scope.placed))).toEqual([]);
  });

  it('on graceful stop finishes the record in flight and commits exactly what it handled', async () => {
    const scope = await newScope('it_graceful', 3);
    const events = Array.from({ length: 60 }, () => placedEvent({ version: 2 }));
    await produce(
      scope.placed,
      events.map((event) => ({ event })),
    );
    const worker = await startStubSagaWorker(scope);
    const ingress = await startScopedIngress(scope);
    try {
      await waitUntil(
        'some handled',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) >= 5,
      );
    } finally {
      await ingress.stop();
      await worker.stop();
    }
    const handled = await db.query<{ partition: number; next: string }>(
      `SELECT source_partition AS partition, max(source_offset) + 1 AS next
         FROM ingress.processed_events WHERE source_topic = $1 GROUP BY source_partition`,
      [scope.placed],
    );
    const offsets = await committed(scope.groupId, scope.placed);
    // Every handled record committed, and nothing committed that was not handled.
    for (const p of [0, 1, 2]) {
      const row = handled.rows.find((r) => r.partition === p);
      expect([p, offsets.get(p) ?? -1]).toEqual([p, row ? Number(row.next) : -1]);
    }
    // The rest is picked up by the next member, each order exactly once.
    const again = await startScopedIngress(scope);
    try {
      await waitUntil(
        'all 60',
        () => ledgerOutcomes(scope),
        (o) => o.STARTED === 60,
      );
    } finally {
      await again.stop();
    }
  });
});
