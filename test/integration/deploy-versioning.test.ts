/**
 * Worker Deployment Versioning of the saga worker, on a private dev server (its deployments and
 * versions never reach the shared namespace). Build A runs the current saga; build B removes the
 * "order received" notice without patched(), a change A's histories cannot replay. A saga started
 * on A stays pinned to A while B takes the new ones after our promote command, and both finish.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Worker, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';

import { replayHistories } from '../../src/deploy/replay-check';
import { currentBuildId, promoteVersion, sagaWorkerDeploymentOptions } from '../../src/deploy/worker-deployment';
import { EventCodec } from '../../src/events/codec';
import { RegistryClient } from '../../src/kafka/registry-client';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import { createServiceActivities } from '../../src/services/all-activities';
import type { ServiceName } from '../../src/services/registry';
import type { OrderDetails, SagaTaskQueues } from '../../src/shared/saga-contract';
import { orderWorkflowId, taskQueuesFor } from '../../src/shared/saga-contract';
import { SimulatedCardGateway } from '../../src/simulated-external/card-gateway';
import { temporalCliPath } from '../../src/stack/components/temporal';
import { bundleSagaWorkflows, createSagaWorkers } from '../../workers/saga-workers';
import type { DbHarness } from '../support/db-harness';
import { openDb, putStock, recordingChannel } from '../support/db-harness';
import { PrivateTemporal } from '../support/private-temporal';
import { CALM_GATEWAY, TEST_TUNING } from '../support/saga-harness';
import { ensureOrderSearchAttributes } from '../support/search-attributes';
import { endpoints, stackConfig, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const DEPLOYMENT = 'kts-order-saga';
const BUILD_A = 'build-a';
const BUILD_B = 'build-b';
const PINNED = temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED;

describe('saga builds under Worker Deployment Versioning (private dev server)', () => {
  let server: PrivateTemporal;
  let connection: Connection;
  let workerConnection: NativeConnection;
  let client: Client;
  let db: DbHarness;
  let bundleA: WorkflowBundleWithSourceMap;
  let bundleB: WorkflowBundleWithSourceMap;
  const running: { worker: Worker; done: Promise<void> }[] = [];
  const started: WorkflowHandle[] = [];
  let queues: SagaTaskQueues;
  let sku: string;

  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    server = await PrivateTemporal.create();
    await server.start();
    connection = await Connection.connect({ address: server.address });
    workerConnection = await NativeConnection.connect({ address: server.address });
    client = new Client({ connection });
    // A private server nobody provisioned: register what the saga upserts, as `npm run provision` would.
    await ensureOrderSearchAttributes(connection, 'default');
    db = await openDb(5);
    sku = uniqueName('sku');
    await putStock(db, sku, 10);
    queues = taskQueuesFor(uniqueName('deploy'));
    [bundleA, bundleB] = await Promise.all([
      bundleSagaWorkflows({ logger: new DefaultLogger('ERROR') }),
      bundleSagaWorkflows({
        workflowsPath: path.join(__dirname, '..', 'support', 'workflows', 'saga-without-received-notice.ts'),
        logger: new DefaultLogger('ERROR'),
      }),
    ]);
  });

  afterAll(async () => {
    for (const h of started) await h.terminate('test cleanup').catch(() => undefined);
    for (const r of running) r.worker.shutdown();
    await Promise.all(running.map((r) => r.done));
    await workerConnection?.close();
    await connection?.close();
    await db?.close();
    await server?.stop();
  });

  /** Starts workers and keeps them until afterAll (or until stopped). */
  async function startWorkers(workers: Worker[]): Promise<void> {
    for (const worker of workers) running.push({ worker, done: worker.run() });
    await Promise.resolve();
  }

  function serviceWorkers(roles: ServiceName[]): Promise<Worker[]> {
    return createSagaWorkers({
      connection: workerConnection,
      taskQueues: queues,
      roles,
      activities: createServiceActivities({
        pools: db.pools,
        gateway: new SimulatedCardGateway(db.pools.card_gateway, CALM_GATEWAY),
        channel: recordingChannel(),
        outbox: new OutboxWriter({
          codec: new EventCodec(new RegistryClient(endpoints.registryUrl)),
          topicPrefix: uniqueName('deploy-outbox'),
        }),
      }),
    });
  }

  function sagaWorker(buildId: string, bundle: WorkflowBundleWithSourceMap): Promise<Worker[]> {
    return createSagaWorkers({
      connection: workerConnection,
      taskQueues: queues,
      roles: ['saga'],
      workflowBundle: bundle,
      sagaDeployment: sagaWorkerDeploymentOptions({
        versioning: true,
        version: { deploymentName: DEPLOYMENT, buildId },
      }),
    });
  }

  /** Waits until the server knows the version (its worker has polled). */
  async function versionRegistered(buildId: string): Promise<void> {
    await waitUntil(
      `the server to know build ${buildId}`,
      async () => {
        // Until the first worker polls, the deployment does not exist yet: that is "not yet", not a failure.
        const d = await client.workflowService
          .describeWorkerDeployment({ namespace: 'default', deploymentName: DEPLOYMENT })
          .catch(() => undefined);
        return d?.workerDeploymentInfo?.versionSummaries?.map((v) => v.deploymentVersion?.buildId) ?? [];
      },
      (builds) => builds.includes(buildId),
      { intervalMs: 300 },
    );
  }

  function order(): OrderDetails {
    return {
      orderId: uniqueName('ord'),
      customerId: uniqueName('cust'),
      currency: 'EUR',
      paymentToken: 'tok_visa',
      items: [{ sku, quantity: 1, unitPriceMinor: 2_500 }],
    };
  }

  async function startSaga(): Promise<WorkflowHandle> {
    const o = order();
    const handle = await client.workflow.start('orderSaga', {
      taskQueue: queues.saga,
      workflowId: orderWorkflowId(o.orderId),
      args: [{ order: o, taskQueues: queues, tuning: TEST_TUNING }],
    });
    started.push(handle);
    return handle;
  }

  /** The activity types a run has scheduled so far, in order. */
  async function scheduled(handle: WorkflowHandle): Promise<string[]> {
    const history = await handle.fetchHistory();
    return (history.events ?? []).flatMap((e) => {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
      return name ? [name] : [];
    });
  }

  async function waitForActivity(handle: WorkflowHandle, activity: string): Promise<string[]> {
    return waitUntil(
      `${handle.workflowId} to schedule ${activity}`,
      () => scheduled(handle),
      (types) => types.includes(activity),
      { intervalMs: 200 },
    );
  }

  /**
   * The run's result; throws as soon as one of its workflow tasks fails (as they would if it landed
   * on a build that cannot replay it), rather than waiting out the test's timeout.
   */
  async function resultUnlessTaskFails(handle: WorkflowHandle): Promise<unknown> {
    let settled = false;
    const result = handle.result().finally(() => (settled = true));
    while (!settled) {
      const history = await handle.fetchHistory();
      const failed = history.events?.find((e) => e.workflowTaskFailedEventAttributes);
      if (failed) {
        const a = failed.workflowTaskFailedEventAttributes;
        throw new Error(`${handle.workflowId}: workflow task failed (${a?.cause}): ${a?.failure?.message}`);
      }
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
    }
    return result;
  }

  async function versioning(handle: WorkflowHandle) {
    const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
    return { buildId: info?.deploymentVersion?.buildId, behavior: info?.behavior };
  }

  it('keeps a run on the build it started on while the promoted build takes new runs', async () => {
    // Payments stays down for now, so sagas wait at chargePayment: open runs across the deploy.
    await startWorkers(await serviceWorkers(['orders', 'inventory', 'notifications']));
    await startWorkers(await sagaWorker(BUILD_A, bundleA));
    await versionRegistered(BUILD_A);
    await promoteVersion(client, { deploymentName: DEPLOYMENT, buildId: BUILD_A });

    const onA = await startSaga();
    // Build A sends the received notice before reserving stock.
    expect(await waitForActivity(onA, 'chargePayment')).toEqual([
      'createOrder',
      'notifyCustomer',
      'reserveStock',
      'chargePayment',
    ]);

    await startWorkers(await sagaWorker(BUILD_B, bundleB));
    await versionRegistered(BUILD_B);
    // B's change would break A's runs: replaying the open run's history on B fails.
    const replay = await replayHistories(bundleB, [
      { workflowId: onA.workflowId, runId: '', status: 'Running', history: await onA.fetchHistory() },
    ]);
    expect(replay.failures.map((f) => f.errorName)).toEqual(['DeterminismViolationError']);

    // Promoting B is one command of ours, against the settings' Temporal (here: the private server).
    const promoted = await run(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['src/deploy/cli.ts', 'promote', '--build-id', BUILD_B],
      { cwd: ROOT, env: { ...process.env, KTS_TEMPORAL_PORT: String(server.port) } },
    );
    expect(promoted.stdout).toContain(`current build ${BUILD_B} (was ${BUILD_A})`);
    expect(await currentBuildId(client, DEPLOYMENT)).toBe(BUILD_B);

    const onB = await startSaga();
    expect(await waitForActivity(onB, 'chargePayment')).toEqual(['createOrder', 'reserveStock', 'chargePayment']);

    // The CLI's view: both versions of the deployment, B current.
    const described = await run(temporalCliPath(stackConfig.cacheDir), [
      'worker',
      'deployment',
      'describe',
      '--name',
      DEPLOYMENT,
      '--address',
      server.address,
      '-o',
      'json',
    ]);
    const deployment = JSON.parse(described.stdout) as {
      versionSummaries?: { buildId?: string; version?: string }[];
      routingConfig?: { currentVersionBuildId?: string; currentVersion?: string };
    };
    const listed = JSON.stringify(deployment.versionSummaries);
    expect(listed).toContain(BUILD_A);
    expect(listed).toContain(BUILD_B);
    expect(JSON.stringify(deployment.routingConfig)).toContain(BUILD_B);

    // Payments comes up: both runs finish, each on its own build.
    await startWorkers(await serviceWorkers(['payments']));
    const [resultA, resultB] = (await Promise.all([resultUnlessTaskFails(onA), resultUnlessTaskFails(onB)])) as {
      outcome: string;
    }[];
    expect([resultA?.outcome, resultB?.outcome]).toEqual(['CONFIRMED', 'CONFIRMED']);
    expect(await versioning(onA)).toEqual({ buildId: BUILD_A, behavior: PINNED });
    expect(await versioning(onB)).toEqual({ buildId: BUILD_B, behavior: PINNED });
    // A's run completed every workflow task on A; had it moved to B it would have failed to replay.
    const history = await onA.fetchHistory();
    const builds = new Set(
      (history.events ?? []).flatMap((e) => {
        const b = e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId;
        return b ? [b] : [];
      }),
    );
    expect([...builds]).toEqual([BUILD_A]);
    expect(await scheduled(onA)).toContain('confirmOrder');
  });
});
