/**
 * Ingress throughput, in one run on one Temporal server:
 *  1. saga starts per second through the ingress (Kafka → decode → validate → ledger → start),
 *     records produced beforehand so only consumption is timed;
 *  2. a bare loop of `client.workflow.start` with the same options and the same number in flight
 *     (partitions × records in flight per partition loops), no Kafka, no ledger;
 *  3. Avro decode + zod validate + upcast records per second, in-process (registry lookups cached).
 * No worker polls the task queue: both paths measure starting, which is what the ingress does.
 *
 * Usage: npx tsx bench/ingress-throughput.ts [orders=2000] [partitions=6] [inFlightPerPartition=1] [--shared-temporal]
 * inFlightPerPartition is KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION (every order its own key).
 * By default a private Temporal dev server (same CLI binary, SQLite file) is started, so other work
 * on the shared stack server cannot skew the comparison; --shared-temporal uses the stack's server.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';

import { Client, Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import { startRoles } from '../src/app/roles';
import { placedEvent } from '../src/cli/order-events';
import { loadSettings } from '../src/config/settings';
import { loadStackConfig, stackEndpoints } from '../src/config/stack-config';
import { EventCodec } from '../src/events/codec';
import { TOPICS } from '../src/events/topics';
import { sagaInputFor } from '../src/ingress/saga-gateway';
import { RegistryClient } from '../src/kafka/registry-client';
import { createLogger } from '../src/observability/logger';
import { createMetrics } from '../src/observability/metrics';
import { buildPlan } from '../src/provision/plan';
import { runProvision } from '../src/provision/run';
import { loadProvisionSettings } from '../src/provision/settings';
import { ORDER_SAGA_WORKFLOW_TYPE, orderWorkflowId, taskQueuesFor } from '../src/shared/saga-contract';
import { PrivateTemporal } from '../src/stack/private-temporal';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const ORDERS = Number(args[0] ?? 2000);
const PARTITIONS = Number(args[1] ?? 6);
const PER_PARTITION = Number(args[2] ?? 1);
const IN_FLIGHT = PARTITIONS * PER_PARTITION;
const SHARED = process.argv.includes('--shared-temporal');
const DECODE_RECORDS = 50_000;
const endpoints = stackEndpoints(loadStackConfig());
const tag = `bench_ingress_${Date.now().toString(36)}`;

async function main(): Promise<void> {
  const privateTemporal = SHARED ? undefined : await PrivateTemporal.create();
  await privateTemporal?.start();
  const temporalEnv = privateTemporal
    ? { KTS_TEMPORAL_PORT: String(privateTemporal.port), KTS_TEMPORAL_UI_PORT: String(privateTemporal.uiPort) }
    : {};
  const temporalAddress = privateTemporal?.address ?? endpoints.temporalAddress;
  const kafka = new Kafka({ clientId: tag, brokers: endpoints.kafkaBrokers, logLevel: logLevel.ERROR });
  const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
  try {
    // 1. Through the ingress.
    const placed = `${tag}.order.placed`;
    // Topics, dead letters and subjects of the bench's scope, as `npm run provision` makes them.
    const provision = loadProvisionSettings({ ...process.env, KTS_SCOPE: tag });
    await runProvision(
      buildPlan({
        ...provision.plan,
        cdc: null,
        include: ['topic', 'subject'],
        topics: [TOPICS.orderPlaced, TOPICS.orderCancelled],
        orderPartitions: PARTITIONS,
      }),
      provision.targets,
    );
    const producer = kafka.producer();
    await producer.connect();
    const encoded = [];
    for (let i = 0; i < ORDERS; i += 1) {
      const e = placedEvent({ version: i % 2 === 0 ? 1 : 2 });
      encoded.push({ key: e.orderId, value: await codec.encode(placed, e) });
    }
    for (let i = 0; i < encoded.length; i += 500) {
      await producer.send({ topic: placed, acks: -1, messages: encoded.slice(i, i + 500) });
    }
    await producer.disconnect();

    // One scope names the bench's topics, consumer group and task queues; the ingress starts as its process does.
    const cfg = loadSettings(
      ['ingress'],
      {
        ...process.env,
        ...temporalEnv,
        KTS_SCOPE: tag,
        KTS_INGRESS_PARTITION_CONCURRENCY: String(PARTITIONS),
        KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION: String(PER_PARTITION),
        LOG_LEVEL: 'silent',
      },
      { refuseForeignCredentials: false },
    );
    const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 2 });
    const running = await startRoles(cfg, ['ingress'], {
      logger: createLogger('bench-ingress', undefined, cfg.common.logLevel),
      metrics: createMetrics('bench-ingress'),
    });
    const ingress = running.ingress!;
    // Timed from the first saga started to the last, so group join time is not counted.
    let first = 0;
    let last = 0;
    for (;;) {
      const started = ingress.consumer.stats.handled.STARTED;
      if (started > 0 && first === 0) first = performance.now();
      if (started >= ORDERS) {
        last = performance.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await running.stop();
    const ledger = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM ingress.processed_events WHERE source_topic = $1 AND outcome = 'STARTED'",
      [placed],
    );
    await db.end();
    if (Number(ledger.rows[0]?.n) !== ORDERS) throw new Error(`ledger has ${ledger.rows[0]?.n} starts, not ${ORDERS}`);
    const ingressRate = (ORDERS - 1) / ((last - first) / 1000);

    // 2. Bare loop: same options, same number in flight, same server.
    const connection = await Connection.connect({ address: temporalAddress });
    const client = new Client({ connection });
    const queues = taskQueuesFor(`${tag}.bare`);
    const inputs = Array.from({ length: ORDERS }, () =>
      sagaInputFor({ ...placedEvent({ version: 2 }), orderId: `bare-${randomUUID()}` } as never, queues),
    );
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (let i = next++; i < ORDERS; i = next++) {
          const input = inputs[i]!;
          await client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
            workflowId: orderWorkflowId(input.order.orderId),
            taskQueue: queues.saga,
            args: [input],
            workflowIdConflictPolicy: 'FAIL',
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
          });
        }
      }),
    );
    const bareRate = ORDERS / ((performance.now() - t0) / 1000);
    await connection.close();

    // 3. Decode + validate + upcast, in-process.
    const frames = encoded.map((m) => m.value);
    for (const f of frames.slice(0, 100)) await codec.decode(f, 'order.placed'); // warm the caches
    const d0 = performance.now();
    for (let i = 0; i < DECODE_RECORDS; i += 1) {
      const out = await codec.decode(frames[i % frames.length]!, 'order.placed');
      if (!out.ok) throw new Error(`bench record did not decode: ${out.reason}`);
    }
    const decodeRate = DECODE_RECORDS / ((performance.now() - d0) / 1000);

    console.log(
      `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
    );
    console.log(`temporal: ${privateTemporal ? 'private dev server (SQLite file)' : 'shared stack server'}`);
    console.log(
      `orders: ${ORDERS}, partitions: ${PARTITIONS}, in flight per partition: ${PER_PARTITION}, ` +
        `in flight: ${IN_FLIGHT}; load average ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
    );
    console.log(`ingress starts/s (Kafka → saga started): ${ingressRate.toFixed(0)}`);
    console.log(`bare client.workflow.start/s:            ${bareRate.toFixed(0)}`);
    console.log(`ingress / bare:                          ${((ingressRate / bareRate) * 100).toFixed(0)}%`);
    console.log(`Avro decode + validate + upcast records/s: ${decodeRate.toFixed(0)}`);
  } finally {
    await privateTemporal?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
