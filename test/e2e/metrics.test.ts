import type { BadRecordKind } from '../../src/cli/order-events';
import { badRecord, placedEvent } from '../../src/cli/order-events';
import { decideParked } from '../../src/cli/parked-sagas';
import { EventCodec } from '../../src/events/codec';
import { deadLetterTopic } from '../../src/events/topics';
import { RegistryClient } from '../../src/kafka/registry-client';
import { LagMonitor } from '../../src/observability/consumer-lag';
import type { Metrics } from '../../src/observability/metrics';
import { createMetrics, serveMetrics } from '../../src/observability/metrics';
import type { Sample } from '../../src/observability/prometheus-text';
import { samplesOf, scrape, sumOf } from '../../src/observability/prometheus-text';
import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { FailureType, orderWorkflowId, sagaStatusQuery } from '../../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../../src/simulated-external/card-gateway';
import { db, ledgerOutcomes, newScope, produce } from '../support/ingress-harness';
import { newOrder, workflowFailure } from '../support/saga-harness';
import { endpoints, kafkaClient, uniqueName } from '../support/stack';
import { failActivity, retryable, startSystem } from '../support/system';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

afterAll(async () => {
  await db.end();
});

/** The orchestrator and the four services in one process, the ingress in another: each with its own registry. */
const WORKER_ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications'] as const;

/** A registry served on a free port, as each process serves its own; scraped over HTTP like Prometheus does. */
async function served(
  service: string,
): Promise<{ metrics: Metrics; scrape: () => Promise<Sample[]>; close: () => Promise<void> }> {
  const metrics = createMetrics(service);
  const server = await serveMetrics(metrics.registry, 0);
  return { metrics, scrape: () => scrape(`http://127.0.0.1:${server.port}/metrics`), close: server.close };
}

const PARTITIONS = 3;
const VALID = 9;
const DECLINED = 3; // of VALID: every third order pays with a card the gateway declines
const DUPLICATES = 4; // the first orders sent again, same eventId
const BAD: BadRecordKind[] = ['empty', 'empty', 'truncated', 'wrong-magic', 'invalid-content', 'key-mismatch'];

describe('Prometheus metrics after a known load', () => {
  it('counts what was produced: consumed by type, dead letters by reason, lag per partition, saga outcomes and compensations', async () => {
    const scope = await newScope('e2e_metrics', PARTITIONS);
    const sku = uniqueName('sku');
    await db.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 10000)', [sku]);
    const events = Array.from({ length: VALID }, (_, i) =>
      placedEvent({ version: 2, skus: [sku], paymentToken: i % 3 === 2 ? DECLINED_CARD_TOKEN : 'tok_visa' }),
    );
    const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
    const bad = await Promise.all(BAD.map((kind) => badRecord(kind, codec, scope.placed, 256 * 1024)));
    await produce(scope.placed, [
      ...events.map((event) => ({ event })),
      ...events.slice(0, DUPLICATES).map((event) => ({ event })),
      ...bad.map((b) => ({ key: b.key, value: b.value })),
    ]);
    const total = VALID + DUPLICATES + BAD.length;

    // Before any consumer: the group has committed nothing, so every record is lag, partition by partition.
    const admin = kafkaClient().admin();
    await admin.connect();
    const watermarks = await admin.fetchTopicOffsets(scope.placed);
    await admin.disconnect();
    const before = await served('lag-before');
    const monitor = new LagMonitor(kafkaClient(), before.metrics, {
      groupId: scope.groupId,
      topics: [scope.placed],
      intervalMs: 60_000,
    });
    try {
      await monitor.refresh();
      const lagBefore = samplesOf(await before.scrape(), 'kts_consumer_lag', { group: scope.groupId });
      expect(lagBefore.map((s) => [s.labels.partition, s.value]).sort()).toEqual(
        watermarks.map((w) => [String(w.partition), Number(w.high)]).sort(),
      );
      expect(lagBefore.reduce((n, s) => n + s.value, 0)).toBe(total);
    } finally {
      await monitor.stop();
      await before.close();
    }

    const ingressMetrics = await served('ingress');
    const workerMetrics = await served('workers');
    // One more saga, started straight from a client with a compensation that can never succeed.
    const stuck = newOrder(sku, 1, DECLINED_CARD_TOKEN);
    try {
      const workers = await startSystem(WORKER_ROLES, {
        // The ingress's scope: its sagas land on these workers' task queues.
        scope: scope.prefix,
        metrics: workerMetrics.metrics,
        activityInterceptors: [
          failActivity(
            'releaseStock',
            (input) => input.orderId === stuck.orderId,
            retryable('inventory database unreachable', 'DatabaseDown'),
          ),
        ],
      });
      try {
        const ingress = await startSystem(['ingress'], {
          scope: scope.prefix,
          env: { KTS_INGRESS_LAG_INTERVAL_MS: '200' },
          metrics: ingressMetrics.metrics,
        });
        try {
          await waitUntil(
            'the sagas started',
            () => ledgerOutcomes(scope),
            (o) => o.STARTED === VALID,
          );
          const results = await Promise.all(
            events.map(
              (e) => workers.client.workflow.getHandle(orderWorkflowId(e.orderId)).result() as Promise<OrderSagaResult>,
            ),
          );
          expect(results.filter((r) => r.outcome === 'FAILED')).toHaveLength(DECLINED);
          // The compensation that can never succeed parks the saga; an operator abandons it.
          const stuckSaga = await workers.start(stuck);
          await waitUntil(
            'the stuck saga parked',
            () => stuckSaga.query(sagaStatusQuery),
            (s) => s.state === 'PARKED',
          );
          await decideParked(workers.client, stuck.orderId, {
            decision: 'ABANDON',
            operator: 'metrics-test',
            reason: 'the inventory database is gone for good',
          });
          const failure = await workflowFailure(stuckSaga.result());
          expect(failure.type).toBe(FailureType.CompensationFailed);
          // Caught up: every record committed, no saga running, so the gauges read zero.
          await waitUntil(
            'lag back to zero and no saga in flight',
            () => ingressMetrics.scrape(),
            (s) =>
              sumOf(s, 'kts_events_consumed_total') === total &&
              samplesOf(s, 'kts_consumer_lag', { group: scope.groupId }).length === 2 * PARTITIONS &&
              sumOf(s, 'kts_consumer_lag', { group: scope.groupId }) === 0 &&
              samplesOf(s, 'kts_sagas_in_flight').length === 1 &&
              sumOf(s, 'kts_sagas_in_flight') === 0,
          );
        } finally {
          await ingress.stop();
        }
      } finally {
        await workers.stop();
      }

      const ing = await ingressMetrics.scrape();
      expect(sumOf(ing, 'kts_events_consumed_total', { topic: scope.placed, event_type: 'order.placed' })).toBe(total);
      expect(sumOf(ing, 'kts_event_processing_seconds_count', { event_type: 'order.placed' })).toBe(total);
      const byReason = (name: string, key: string): Record<string, number> =>
        Object.fromEntries(samplesOf(ing, name).map((s) => [s.labels[key] ?? '', s.value]));
      const expectedReasons = {
        EmptyPayload: 2,
        TruncatedPayload: 1,
        WrongMagicByte: 1,
        InvalidContent: 1,
        KeyMismatch: 1,
      };
      expect(bad.map((b) => b.expectedReasons)).toEqual(
        ['EmptyPayload', 'EmptyPayload', 'TruncatedPayload', 'WrongMagicByte', 'InvalidContent', 'KeyMismatch'].map(
          (r) => [r],
        ),
      );
      expect(byReason('kts_dead_letters_total', 'reason')).toEqual(expectedReasons);
      expect(samplesOf(ing, 'kts_dead_letters_total').every((s) => s.labels.topic === scope.placed)).toBe(true);
      // No transient failure happened, so the errors are exactly the poison records.
      expect(byReason('kts_event_errors_total', 'error_type')).toEqual(expectedReasons);
      expect(sumOf(ing, 'kts_dead_letter_queue_size', { topic: deadLetterTopic(scope.placed) })).toBe(BAD.length);
      expect(sumOf(ing, 'kts_dead_letter_queue_size', { topic: deadLetterTopic(scope.cancelled) })).toBe(0);
      expect(
        samplesOf(ing, 'kts_consumer_lag', { group: scope.groupId })
          .map((s) => `${s.labels.topic}/${s.labels.partition}=${s.value}`)
          .sort(),
      ).toEqual([scope.placed, scope.cancelled].flatMap((t) => [0, 1, 2].map((p) => `${t}/${p}=0`)).sort());

      const wk = await workerMetrics.scrape();
      expect(
        Object.fromEntries(samplesOf(wk, 'kts_saga_outcomes_total').map((s) => [s.labels.outcome, s.value])),
      ).toEqual({
        CONFIRMED: VALID - DECLINED,
        FAILED: DECLINED,
        ABANDONED: 1,
      });
      // Counted once, when its compensation failed and it parked; abandoning it is an outcome, not another failure.
      expect(sumOf(wk, 'kts_compensation_failed_total')).toBe(1);
      // A declined charge left nothing to refund: stock is released, the order failed, the customer told.
      // The stuck saga's releaseStock never completed, so it is not counted.
      expect(Object.fromEntries(samplesOf(wk, 'kts_compensations_total').map((s) => [s.labels.step, s.value]))).toEqual(
        {
          releaseStock: DECLINED,
          failOrder: DECLINED + 1,
          notifyCustomer: DECLINED + 1,
        },
      );
      // Only the sagas started from an event know when it happened.
      expect(
        Object.fromEntries(
          samplesOf(wk, 'kts_event_to_saga_complete_seconds_count').map((s) => [s.labels.outcome, s.value]),
        ),
      ).toEqual({ CONFIRMED: VALID - DECLINED, FAILED: DECLINED });
      const slowest = sumOf(wk, 'kts_event_to_saga_complete_seconds_sum');
      expect(slowest).toBeGreaterThan(0);
    } finally {
      await ingressMetrics.close();
      await workerMetrics.close();
    }
  });
});
