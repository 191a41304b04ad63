/**
 * One trace per order, end to end: the producer's traceparent header on `order.placed` → the ingress
 * span → Temporal (client interceptor, workflow and activity spans) → the services' outbox rows →
 * Debezium's traceparent header on every domain event the saga emits.
 */
import { randomUUID } from 'node:crypto';

import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import pino from 'pino';

import { createServiceActivities } from '../../activities';
import { placedEvent } from '../../src/cli/order-events';
import { closeServicePools, createServicePools } from '../../src/db/pools';
import { dbConfigFromSettings } from '../../src/db/db-config';
import { migrateAll } from '../../src/db/migrate';
import { EventCodec } from '../../src/events/codec';
import { TOPICS } from '../../src/events/topics';
import type { Ingress } from '../../src/ingress/app';
import { RegistryClient } from '../../src/kafka/registry-client';
import { TRACEPARENT_HEADER, initTracing, producerSpan } from '../../src/observability/tracing';
import { prefixedTopic } from '../../src/outbox/outbox-constants';
import { SimulatedCardGateway } from '../../src/services/card-gateway';
import { logChannel } from '../../src/services/notification-channel';
import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { orderWorkflowId, taskQueuesFor } from '../../src/shared/saga-contract';
import { bundleSagaWorkflows, createSagaWorkers } from '../../workers/saga-workers';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import type { IngressScope } from '../support/ingress-harness';
import { newScope, readAll, startScopedIngress, temporalClient, waitFor } from '../support/ingress-harness';
import { allSettings } from '../support/settings';
import { endpoints, kafkaClient } from '../support/stack';

jest.setTimeout(300_000);

// Before anything else in this process: OpenTelemetry's globals can be installed once, and every
// component below (ingress client, workers, workflow span sink) must export into this one.
const exporter = new InMemorySpanExporter();
const tracing = initTracing('e2e-tracing', exporter);

const ACTIVITIES = ['createOrder', 'reserveStock', 'chargePayment', 'confirmOrder', 'notifyCustomer'] as const;
/** Domain events of a confirmed saga, each from a different service's outbox. */
const DOMAIN_TOPICS = [TOPICS.stockReserved, TOPICS.paymentCaptured, TOPICS.orderConfirmed] as const;

describe('one trace per order', () => {
  let scope: IngressScope;
  let cdc: CdcScope;
  let ingress: Ingress;
  let workers: Worker[] = [];
  let running: Promise<unknown> = Promise.resolve();
  let workerConnection: NativeConnection;
  let temporal: Awaited<ReturnType<typeof temporalClient>>;
  const dbCfg = dbConfigFromSettings(allSettings.roles.provision, allSettings.postgres);
  const pools = createServicePools(dbCfg, 5);
  const sku = `SKU-TRACE-${randomUUID()}`;

  beforeAll(async () => {
    // The SDK's lifecycle chatter would bury the report; warnings and errors still show.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    await migrateAll(dbCfg);
    scope = await newScope('trace');
    // The connector publishes this scope's outbox rows to `<prefix>.<domain topic>`.
    cdc = await startCdcScope('trace', { prefix: scope.prefix });
    await pools.inventory.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 1000)', [sku]);
    workerConnection = await NativeConnection.connect({ address: endpoints.temporalAddress });
    const quiet = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} };
    workers = await createSagaWorkers({
      connection: workerConnection,
      taskQueues: taskQueuesFor(scope.taskQueuePrefix),
      roles: ['saga', 'orders', 'inventory', 'payments', 'notifications'],
      activities: createServiceActivities({
        pools,
        gateway: new SimulatedCardGateway(pools.card_gateway, {
          declineRate: 0,
          transientErrorRate: 0,
          latencyMs: { min: 0, max: 0 },
        }),
        channel: logChannel(pino({ level: 'silent' })),
        outbox: cdc.writer,
      }),
      workflowBundle: await bundleSagaWorkflows({ logger: quiet, tracing }),
      tracing,
    });
    running = Promise.all(workers.map((w) => w.run()));
    ingress = await startScopedIngress(scope);
    temporal = await temporalClient();
  });

  afterAll(async () => {
    await ingress?.stop();
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running;
    await workerConnection?.close();
    await temporal?.close();
    await cdc?.stop();
    await closeServicePools(pools);
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
    await waitFor(
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
    const names = await waitFor(
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
      const records = await waitFor(
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
