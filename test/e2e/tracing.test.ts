/**
 * One trace per order, end to end: the producer's traceparent header on `order.placed` → the ingress
 * span → Temporal (client interceptor, workflow and activity spans) → the services' outbox rows →
 * Debezium's traceparent header on every domain event the saga emits.
 */

import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

import type { RunningRoles } from '../../src/app/roles';
import { startRoles } from '../../src/app/roles';
import { installTemporalRuntime } from '../../src/app/run-process';
import { placedEvent } from '../../src/cli/order-events';
import { EventCodec } from '../../src/events/codec';
import { TOPICS } from '../../src/events/topics';
import { RegistryClient } from '../../src/kafka/registry-client';
import { createLogger } from '../../src/observability/logger';
import { createMetrics } from '../../src/observability/metrics';
import { initTracing, producerSpan, TRACEPARENT_HEADER } from '../../src/observability/tracing';
import { prefixedTopic } from '../../src/outbox/outbox-constants';
import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import { bundleSagaWorkflows } from '../../workers/saga-workers';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import type { IngressScope } from '../support/ingress-harness';
import { newScope, readAll, temporalClient } from '../support/ingress-harness';
import { testSettings } from '../support/settings';
import { endpoints, kafkaClient, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

// Before anything else in this process, as runProcess does first: OpenTelemetry's globals can be
// installed once, and every component below (ingress client, workers, workflow span sink) must
// export into this one.
const exporter = new InMemorySpanExporter();
const tracing = initTracing('e2e-tracing', exporter);

const ACTIVITIES = ['createOrder', 'reserveStock', 'chargePayment', 'confirmOrder', 'notifyCustomer'] as const;
/** Domain events of a confirmed saga, each from a different service's outbox. */
const DOMAIN_TOPICS = [TOPICS.stockReserved, TOPICS.paymentCaptured, TOPICS.orderConfirmed] as const;
/** The roles an order passes through from Kafka to its domain events, started as the processes start them. */
const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications', 'ingress'] as const;

describe('one trace per order', () => {
  let scope: IngressScope;
  let cdc: CdcScope;
  let running: RunningRoles;
  let temporal: Awaited<ReturnType<typeof temporalClient>>;
  const sku = uniqueName('SKU-TRACE');

  beforeAll(async () => {
    // The SDK's lifecycle chatter would bury the report; warnings and errors still show.
    const logger = createLogger('e2e-tracing', undefined, 'warn');
    installTemporalRuntime(logger, 'warn');
    scope = await newScope('trace');
    // The connector publishes this scope's outbox rows to `<prefix>.<domain topic>`.
    cdc = await startCdcScope('trace', { prefix: scope.prefix });
    const quiet = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} };
    // Traced as with an OTLP endpoint; the spans go to the in-memory exporter instead.
    running = await startRoles(
      testSettings(ROLES, scope.prefix, { LOG_LEVEL: 'warn', KTS_TEMPORAL_TRACING: 'on' }),
      ROLES,
      {
        logger,
        metrics: createMetrics('e2e-tracing'),
        tracing,
        workflowBundle: await bundleSagaWorkflows({ logger: quiet, tracing }),
      },
    );
    await running.pools.inventory!.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 1000)', [sku]);
    temporal = await temporalClient();
  });

  afterAll(async () => {
    await running?.stop();
    await temporal?.close();
    await cdc?.stop();
  });

  it('spans the Kafka event, the ingress, the workflow, every activity and the emitted domain events', async () => {
    const event = placedEvent({ version: 2, skus: [sku] });
    const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
    const producer = kafkaClient().producer();
    await producer.connect();
    const span = producerSpan('produce order.placed', { orderId: event.orderId });
    const traceparent = span.headers[TRACEPARENT_HEADER];
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceId = traceparent!.split('-')[1]!;
    try {
      await producer.send({
        topic: scope.placed,
        acks: -1,
        messages: [{ key: event.orderId, value: await codec.encode(scope.placed, event), headers: span.headers }],
      });
    } finally {
      span.end();
      await producer.disconnect();
    }

    const handle = temporal.client.workflow.getHandle(orderWorkflowId(event.orderId));
    await waitUntil(
      'the saga to start',
      () =>
        handle.describe().then(
          () => true,
          () => false,
        ),
      (started) => started,
    );
    const result = (await handle.result()) as OrderSagaResult;
    expect(result.outcome).toBe('CONFIRMED');

    // Workflow spans arrive through the worker's sink after the final workflow task completes.
    const expected = [
      'produce order.placed',
      'ingress order.placed',
      'StartWorkflow:orderSaga',
      'RunWorkflow:orderSaga',
      ...ACTIVITIES.flatMap((a) => [`StartActivity:${a}`, `RunActivity:${a}`]),
    ];
    const inTrace = (spans: ReadableSpan[]) =>
      spans.filter((s) => s.spanContext().traceId === traceId).map((s) => s.name);
    const names = await waitUntil(
      'every span of the order',
      async () => {
        await tracing.spanProcessor.forceFlush();
        return [...new Set(inTrace(exporter.getFinishedSpans()))].sort();
      },
      (seen) => expected.every((n) => seen.includes(n)),
    );
    expect(names).toEqual(expect.arrayContaining(expected));
    // Nothing of this order escaped into a trace of its own.
    const elsewhere = exporter
      .getFinishedSpans()
      .filter((s) => s.spanContext().traceId !== traceId && s.attributes.orderId === event.orderId);
    expect(elsewhere.map((s) => s.name)).toEqual([]);

    for (const topic of DOMAIN_TOPICS) {
      const routed = prefixedTopic(scope.prefix, topic);
      const records = await waitUntil(
        `${routed} to carry the order's event`,
        () => readAllIfExists(routed),
        (rs) => rs.some((r) => r.message.key?.toString() === event.orderId),
      );
      const mine = records.filter((r) => r.message.key?.toString() === event.orderId);
      for (const r of mine) {
        const header = r.message.headers?.[TRACEPARENT_HEADER]?.toString();
        expect([topic, header?.split('-')[1]]).toEqual([topic, traceId]);
      }
    }
  });
});

/** readAll, but an empty list while Connect has not created the topic yet. */
async function readAllIfExists(topic: string) {
  const admin = kafkaClient().admin();
  await admin.connect();
  const exists = (await admin.listTopics()).includes(topic);
  await admin.disconnect();
  return exists ? readAll(topic) : [];
}
