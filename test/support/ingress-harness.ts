import path from 'node:path';

import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundle } from '@temporalio/worker';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import type { KafkaMessage } from 'kafkajs';
import pg from 'pg';
import pino from 'pino';

import { scopeNames } from '../../src/config/scope';
import { EventCodec } from '../../src/events/codec';
import { TOPICS } from '../../src/events/topics';
import type { Ingress } from '../../src/ingress/app';
import { startIngress } from '../../src/ingress/app';
import type { IngressConfig } from '../../src/ingress/config';
import { RegistryClient } from '../../src/kafka/registry-client';
import { taskQueuesFor } from '../../src/shared/saga-contract';
import { provisionScope } from './provision-scope';
import { testSettings } from './settings';
import { endpoints, kafkaClient, uniqueName } from './stack';
import { createStubSagaActivities, ensureStubTable, STUB_TABLE } from './stub-saga-activities';

/** One test's KTS_SCOPE and the names it gives: nothing shared with any other test. */
export interface IngressScope {
  /** The KTS_SCOPE of the test (also the prefix of its topics and task queues). */
  prefix: string;
  placed: string;
  cancelled: string;
  groupId: string;
  taskQueuePrefix: string;
}

/** The scopes newScope made in this test file (Jest loads this module once per file). */
const scopesMade: IngressScope[] = [];

export async function newScope(name: string, partitions = 1): Promise<IngressScope> {
  const prefix = uniqueName(name);
  const names = scopeNames(prefix);
  const scope = {
    prefix,
    placed: names.topics.orderPlaced,
    cancelled: names.topics.orderCancelled,
    groupId: names.groups.ingress,
    taskQueuePrefix: prefix,
  };
  // Topics, dead-letter topics and subjects, as provisioning makes them: the ingress only verifies.
  await provisionScope(prefix, { topics: [TOPICS.orderPlaced, TOPICS.orderCancelled], partitions });
  scopesMade.push(scope);
  return scope;
}

/** The environment of an ingress process of the scope: one KTS_SCOPE names its topics, group and task queues. */
export function scopeEnv(scope: IngressScope, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, KTS_SCOPE: scope.prefix, LOG_LEVEL: 'silent', ...extra };
}

export function scopeConfig(scope: IngressScope, extra: Record<string, string> = {}): IngressConfig {
  return testSettings(['ingress'], scope.prefix, { LOG_LEVEL: 'silent', ...extra });
}

export function startScopedIngress(scope: IngressScope, extra: Record<string, string> = {}): Promise<Ingress> {
  const cfg = scopeConfig(scope, extra);
  return startIngress(cfg, pino({ level: cfg.common.logLevel }));
}

export const STUB_WORKFLOWS_PATH = path.join(__dirname, 'workflows', 'stub-order-saga.ts');

/**
 * The stub workflows bundled once, for a file that starts stub workers more than once or wants the
 * bundling (many seconds on a busy machine) to overlap with its other setup.
 */
export function bundleStubWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath: STUB_WORKFLOWS_PATH });
}

/** A worker running the stub `orderSaga` on the scope's saga task queue, until `stop()`. */
export async function startStubSagaWorker(
  scope: IngressScope,
  address = endpoints.temporalAddress,
  /** A bundle from bundleStubWorkflows; without it the worker bundles the stub workflows itself. */
  bundle?: WorkflowBundle,
) {
  await ensureStubTable();
  const pool = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 10 });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue: taskQueuesFor(scope.taskQueuePrefix).saga,
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath: STUB_WORKFLOWS_PATH }),
    activities: createStubSagaActivities(pool),
    maxConcurrentWorkflowTaskExecutions: 100,
    maxConcurrentActivityTaskExecutions: 100,
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await pool.end();
    },
  };
}

/** Produces events (or raw records) with the shared codec, keyed by orderId like real producers. */
export async function produce(
  topic: string,
  records: (
    { event: { eventType: string; eventVersion: number; orderId: string } } | { key: string; value: Buffer | null }
  )[],
): Promise<void> {
  const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
  const producer = kafkaClient().producer();
  await producer.connect();
  try {
    const messages = [];
    for (const r of records) {
      if ('event' in r) messages.push({ key: r.event.orderId, value: await codec.encode(topic, r.event) });
      else messages.push({ key: r.key, value: r.value });
    }
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
    }
  } finally {
    await producer.disconnect();
  }
}

export const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 4 });

/** Stub saga rows of a scope: runs per order, from PostgreSQL. */
export async function stubRuns(scope: IngressScope): Promise<{ orderId: string; runs: number; outcomes: string[] }[]> {
  const res = await db.query<{ order_id: string; runs: string; outcomes: string[] }>(
    `SELECT order_id, count(*) AS runs, array_agg(outcome ORDER BY recorded_at) AS outcomes
       FROM ${STUB_TABLE} WHERE task_queue = $1 GROUP BY order_id`,
    [taskQueuesFor(scope.taskQueuePrefix).saga],
  );
  return res.rows.map((r) => ({ orderId: r.order_id, runs: Number(r.runs), outcomes: r.outcomes }));
}

/** Ledger outcomes of a scope's events, from PostgreSQL. */
export async function ledgerOutcomes(scope: IngressScope): Promise<Record<string, number>> {
  const res = await db.query<{ outcome: string; n: string }>(
    `SELECT outcome, count(*) AS n FROM ingress.processed_events WHERE source_topic = ANY($1) GROUP BY outcome`,
    [[scope.placed, scope.cancelled]],
  );
  return Object.fromEntries(res.rows.map((r) => [r.outcome, Number(r.n)]));
}

export async function temporalClient(address = endpoints.temporalAddress) {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection }), close: () => connection.close() };
}

/**
 * Terminates every RUNNING saga on the scopes' saga task queues (by default every scope newScope made
 * in this file): a test's stub or half-finished sagas must not stay open in the namespace a user
 * browses in the Web UI. Returns how many it ended.
 */
export async function terminateScopeSagas(
  scopes: readonly IngressScope[] = scopesMade,
  address = endpoints.temporalAddress,
): Promise<number> {
  if (scopes.length === 0) return 0;
  const { client, close } = await temporalClient(address);
  let ended = 0;
  try {
    for (const scope of scopes) {
      const query = `TaskQueue = '${taskQueuesFor(scope.taskQueuePrefix).saga}' AND ExecutionStatus = 'Running'`;
      for await (const wf of client.workflow.list({ query })) {
        // One may close between the listing and this call: that is the outcome wanted anyway.
        await client.workflow
          .getHandle(wf.workflowId, wf.runId)
          .terminate('test over')
          .catch(() => undefined);
        ended += 1;
      }
    }
  } finally {
    await close();
  }
  return ended;
}

/** Workflow runs on the scope's saga task queue, per workflow id, from Temporal's visibility store. */
export async function temporalRuns(client: Client, scope: IngressScope): Promise<Map<string, number>> {
  const runs = new Map<string, number>();
  const query = `TaskQueue = '${taskQueuesFor(scope.taskQueuePrefix).saga}'`;
  for await (const wf of client.workflow.list({ query })) runs.set(wf.workflowId, (runs.get(wf.workflowId) ?? 0) + 1);
  return runs;
}

/** Every record on a topic right now (from the beginning, with a fresh group). */
export async function readAll(topic: string): Promise<{ partition: number; message: KafkaMessage }[]> {
  const admin = kafkaClient().admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  const out: { partition: number; message: KafkaMessage }[] = [];
  if (total === 0) return out;
  const consumer = kafkaClient().consumer({ groupId: uniqueName('read_all') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: ({ partition, message }) => {
          out.push({ partition, message });
          if (out.length >= total) resolve();
          return Promise.resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}
