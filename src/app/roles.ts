/**
 * Starts the roles of one process on its parsed settings, in dependency order, and stops them in
 * the reverse order. Entry points reach it through runProcess (src/app/run-process.ts); the main
 * job, e2e tests and benchmarks call it directly to run the system in-process.
 *
 * Each role is built only from its own section of the settings: the orders worker gets the orders
 * URL and nothing else, so it cannot open another service's pool.
 */
import type { ActivityInterceptorsFactory, NativeConnection, Worker, WorkflowBundleOption } from '@temporalio/worker';
import type pg from 'pg';

import type { WorkerObservability } from '../../workers/saga-workers';
import { bundleSagaWorkflows, createSagaWorkers } from '../../workers/saga-workers';
import type { OrdersApi } from '../api/app';
import { startOrdersApi } from '../api/app';
import { connectTemporalWorker, createKafka, createPgPool } from '../config/clients';
import type { Role, RoleSettings, Settings } from '../config/settings';
import { WORKER_ROLES } from '../config/settings';
import type { DbOwner } from '../db/db-config';
import { sagaWorkerDeploymentOptions } from '../deploy/worker-deployment';
import type { EventStoreConsumer } from '../event-store/event-store-consumer';
import { eventStoreSubscription, startEventStoreConsumer } from '../event-store/event-store-consumer';
import type { Ingress } from '../ingress/app';
import { startIngress } from '../ingress/app';
import { LagMonitor } from '../observability/consumer-lag';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { startReplicationSlotSampler } from '../observability/replication-slots';
import type { Tracing } from '../observability/tracing';
import { startOutboxCleaner } from '../outbox/outbox-cleaner';
import { outboxWriterFor } from '../outbox/outbox-config';
import { buildPlan } from '../provision/plan';
import { formatStepLine, runProvision } from '../provision/run';
import { provisionSettingsFrom } from '../provision/settings';
import { verifyRoles } from '../provision/verify';
import type { ServiceActivities } from '../services/all-activities';
import { createInventoryActivities } from '../services/inventory/inventory-activities';
import type { LoyaltyConfig, LoyaltyService } from '../services/loyalty/loyalty-consumer';
import { startLoyaltyService } from '../services/loyalty/loyalty-consumer';
import { createNotificationsActivities } from '../services/notifications/notifications-activities';
import { createOrdersActivities } from '../services/orders/orders-activities';
import { createPaymentsActivities } from '../services/payments/payments-activities';
import { SimulatedCardGateway } from '../simulated-external/card-gateway';
import type { NotificationChannel } from '../simulated-external/notification-channel';
import { logChannel } from '../simulated-external/notification-channel';

/** The orchestrator's workflow code, bundled once (tests and benchmarks pass it as `workflowBundle`). */
export { bundleSagaWorkflows };

export interface RoleContext {
  logger: Logger;
  /** The process's registry: workers, ingress and event store record into it. */
  metrics: Metrics;
  tracing?: Tracing;
  /** Progress for a terminal (the main job); processes log instead. */
  onStep?: (text: string) => void;
  /** A prebuilt workflow bundle (tests and benchmarks bundle once). */
  workflowBundle?: WorkflowBundleOption;
  /** Where notices go; the log by default. */
  channel?: NotificationChannel;
  /** Activity slots per service worker. */
  maxConcurrentActivityTaskExecutions?: number;
  /** Extra activity interceptors of the service workers (tests inject faults around real activities). */
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** Observability pieces of the workers to switch off (benchmarks measure each); all on by default. */
  observability?: WorkerObservability;
  /** Randomness of the simulated card gateway (tests make its transient errors deterministic). */
  gatewayRandom?: () => number;
}

export interface RunningRoles {
  roles: readonly Role[];
  ingress?: Ingress;
  api?: OrdersApi;
  eventStore?: EventStoreConsumer;
  loyalty?: LoyaltyService;
  workers: Worker[];
  /** The pools this process opened, by owner (each logged in as that owner's role). */
  pools: Partial<Record<DbOwner, pg.Pool>>;
  /** Settles when a worker stops by itself (a fatal error): the process should then stop. */
  failed: Promise<Error>;
  /** Graceful, in reverse start order: API, ingress, event store, cleaner, workers, connections. */
  stop(): Promise<void>;
}

/** Closes what was opened so far, last first; errors are collected, not thrown halfway. */
class Stack {
  private readonly closers: { name: string; close: () => Promise<unknown> }[] = [];
  push(name: string, close: () => Promise<unknown>): void {
    this.closers.push({ name, close });
  }
  async closeAll(log: Logger): Promise<void> {
    for (const c of this.closers.reverse()) {
      try {
        await c.close();
      } catch (err) {
        log.error({ err, component: c.name }, 'unclean stop');
      }
    }
    this.closers.length = 0;
  }
}

/**
 * Starts `roles` on `settings` (which must hold each role's section). Order: provisioning, workers,
 * event store, outbox cleaner, ingress, API, so nothing takes work before what handles it runs.
 */
export async function startRoles<R extends Role>(
  settings: Settings<R>,
  roles: readonly R[],
  ctx: RoleContext,
): Promise<RunningRoles> {
  const own = settings.roles as Partial<RoleSettings>;
  const names = settings.common.names;
  const log = ctx.logger;
  const step = (text: string) => {
    ctx.onStep?.(text);
    log.info({ step: text }, 'starting');
  };
  const has = (r: Role) => (roles as readonly Role[]).includes(r);
  const closers = new Stack();
  const running: RunningRoles = {
    roles,
    workers: [],
    pools: {},
    failed: new Promise<Error>(() => undefined),
    stop: () => Promise.resolve(),
  };
  let failedResolve: (err: Error) => void = () => undefined;
  running.failed = new Promise<Error>((resolve) => (failedResolve = resolve));
  try {
    if (own.provision) {
      step('provisioning: migrations, topics, registry subjects, search attributes, publication, connector');
      // Like `npm run provision` (reordering subjects an older build registered out of file order:
      // ids are kept); every role below then only verifies.
      const provision = provisionSettingsFrom(settings as unknown as Settings<'provision'>);
      await runProvision(buildPlan(provision.plan), provision.targets, {
        reorderSubjects: true,
        onProgress: ({ index, total, report }) => {
          if (report?.outcome === 'changed') step(formatStepLine(index, total, report));
        },
      });
    }

    const pool = (owner: keyof RunningRoles['pools'], url: string) => {
      const p = createPgPool(url, settings.postgres, {
        applicationName: `kts-${owner}`,
        onError: (err) => log.warn({ err, pool: owner }, 'database connection failed'),
      });
      running.pools[owner] = p;
      closers.push(`${owner} pool`, () => p.end());
      return p;
    };
    const workerRoles = WORKER_ROLES.filter((r) => has(r));
    if (workerRoles.length) {
      step(`starting workers: ${workerRoles.join(', ')}`);
      // Each worker verifies, with its own role's URLs only, what provisioning made for it.
      await verifyRoles(workerRoles, {
        schemaUrls: {
          ...(own.orders && { orders: own.orders.pgUrl }),
          ...(own.inventory && { inventory: own.inventory.pgUrl }),
          ...(own.payments && { payments: own.payments.pgUrl, card_gateway: own.payments.cardGatewayPgUrl }),
          ...(own.notifications && { notifications: own.notifications.pgUrl }),
        },
        registry: settings.registry,
        temporal: settings.temporal,
        pgSsl: settings.postgres.ssl,
      });
      const outbox = outboxWriterFor(settings);
      const activities: Partial<ServiceActivities> = {};
      if (own.orders) activities.orders = createOrdersActivities({ db: pool('orders', own.orders.pgUrl), outbox });
      if (own.inventory) {
        activities.inventory = createInventoryActivities({ db: pool('inventory', own.inventory.pgUrl), outbox });
      }
      if (own.payments) {
        const gateway = new SimulatedCardGateway(
          pool('card_gateway', own.payments.cardGatewayPgUrl),
          ctx.gatewayRandom ? { ...own.payments.gateway, random: ctx.gatewayRandom } : own.payments.gateway,
        );
        activities.payments = createPaymentsActivities({ db: pool('payments', own.payments.pgUrl), gateway, outbox });
      }
      if (own.notifications) {
        activities.notifications = createNotificationsActivities({
          db: pool('notifications', own.notifications.pgUrl),
          channel: ctx.channel ?? logChannel(log.child({ component: 'notifications' })),
          outbox,
        });
      }
      const connection: NativeConnection = await connectTemporalWorker(settings.temporal);
      closers.push('temporal worker connection', () => connection.close());
      running.workers = await createSagaWorkers({
        connection,
        namespace: settings.temporal.namespace,
        taskQueues: names.taskQueues,
        roles: workerRoles,
        activities,
        metrics: ctx.metrics,
        tracing: ctx.tracing,
        logger: log.child({ component: 'workers' }),
        workflowBundle: ctx.workflowBundle,
        sagaDeployment: own.saga ? sagaWorkerDeploymentOptions(own.saga.deployment) : undefined,
        maxConcurrentActivityTaskExecutions: ctx.maxConcurrentActivityTaskExecutions,
        activityInterceptors: ctx.activityInterceptors,
        // The settings decide tracing unless the caller (a benchmark switching pieces off) does.
        observability: { tracing: settings.common.temporalTracing, ...ctx.observability },
      });
      const runs = running.workers.map((w) =>
        w.run().then(
          () => undefined,
          (err: unknown) => failedResolve(err instanceof Error ? err : new Error(String(err))),
        ),
      );
      closers.push('workers', async () => {
        for (const w of running.workers) if (w.getState() === 'RUNNING') w.shutdown();
        await Promise.all(runs);
      });
    }

    if (own.eventStore) {
      step('starting the event store');
      const eventStore = await startEventStoreConsumer(settings as unknown as Settings<'eventStore'>);
      running.eventStore = eventStore;
      closers.push('event store', () => eventStore.stop());
      // The event store's lag is how far history lags behind the domain topics.
      const sub = eventStoreSubscription(settings as unknown as Settings<'eventStore'>);
      const lag = new LagMonitor(createKafka(settings.kafka, `${sub.groupId}-lag`), ctx.metrics, {
        ...sub,
        intervalMs: 5_000,
      });
      lag.start();
      closers.push('event store lag', () => lag.stop());
    }

    if (own.loyalty) {
      step('starting the loyalty service');
      // Choreographed: its own consumer group over order events; nothing in the saga calls it.
      const loyalty = await startLoyaltyService(
        settings as unknown as LoyaltyConfig,
        log.child({ component: 'loyalty' }),
        ctx.metrics,
      );
      running.loyalty = loyalty;
      closers.push('loyalty', () => loyalty.stop());
    }

    if (own.outboxCleaner) {
      step('starting the outbox cleaner');
      // Its own role: it can read and delete outbox rows and nothing else (no service's credentials).
      await verifyRoles(['outboxCleaner'], {
        schemaUrls: {},
        loginUrl: own.outboxCleaner.pgUrl,
        pgSsl: settings.postgres.ssl,
      });
      const db = createPgPool(own.outboxCleaner.pgUrl, settings.postgres, {
        max: 2,
        applicationName: 'kts-outbox-cleaner',
      });
      closers.push('outbox cleaner pool', () => db.end());
      // Rows are deleted only once the connector's slot has confirmed them, so cleaning never loses one.
      const cleaner = startOutboxCleaner({
        slotName: names.connector.slotName,
        db,
        intervalMs: own.outboxCleaner.intervalMs,
        onError: (err) => log.warn({ err }, 'outbox clean-up round failed; retrying next round'),
        onRound: (r) => log.debug({ deleted: r.deleted, confirmed: r.confirmed }, 'outbox clean-up round'),
      });
      closers.push('outbox cleaner', () => cleaner.stop());
      // The replication-slot gauges (lag, retained WAL, WAL left before invalidation) behind the alerts.
      const slots = startReplicationSlotSampler({
        db,
        metrics: ctx.metrics,
        intervalMs: own.outboxCleaner.slotSampleMs,
        onError: (err) => log.warn({ err }, 'could not read the replication slots'),
      });
      closers.push('replication slot sampler', () => slots.stop());
    }

    if (own.ingress) {
      step('starting the Kafka ingress');
      const ingress = await startIngress(
        settings as unknown as Settings<'ingress'>,
        log.child({ component: 'ingress' }),
        ctx.metrics,
      );
      running.ingress = ingress;
      closers.push('ingress', () => ingress.stop());
    }

    if (own.api) {
      step('starting the Orders HTTP API');
      const api = await startOrdersApi(settings as unknown as Settings<'api'>, log.child({ component: 'api' }));
      running.api = api;
      closers.push('api', () => api.stop());
    }
  } catch (err) {
    await closers.closeAll(log);
    throw err;
  }
  let stopping: Promise<void> | undefined;
  running.stop = () => (stopping ??= closers.closeAll(log));
  return running;
}
