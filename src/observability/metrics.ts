import http from 'node:http';

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every Prometheus metric the project exposes, defined once so names and labels never drift between
 * the process that records a value and the dashboard or test that reads it.
 */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'kts_process_' });
  const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  return {
    registry,
    eventsConsumed: new Counter({
      name: 'kts_events_consumed_total',
      // Counted once per record, when it is durably handled (a transient failure retried is not a second record).
      help: 'Kafka records consumed, by topic and the event type that topic carries',
      labelNames: ['topic', 'event_type'] as const,
      registers: [registry],
    }),
    eventErrors: new Counter({
      name: 'kts_event_errors_total',
      help:
        'Records that failed handling, by event type and failure type: the dead-letter reason for poison, ' +
        "the error's name for a transient failure (which pauses the partition and is retried)",
      labelNames: ['event_type', 'error_type'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'kts_dead_letters_total',
      help: 'Records written to a dead-letter topic, by source topic and reason',
      labelNames: ['topic', 'reason'] as const,
      registers: [registry],
    }),
    deadLetterQueueSize: new Gauge({
      name: 'kts_dead_letter_queue_size',
      help: 'Records held in a dead-letter topic (high minus low watermark, summed over partitions)',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'kts_consumer_lag',
      help: 'High watermark minus committed offset, per topic partition',
      labelNames: ['group', 'topic', 'partition'] as const,
      registers: [registry],
    }),
    processingSeconds: new Histogram({
      name: 'kts_event_processing_seconds',
      help: 'Time from taking a record to having durably handled it',
      labelNames: ['event_type'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    eventToSagaCompleteSeconds: new Histogram({
      name: 'kts_event_to_saga_complete_seconds',
      help: 'Time from an order.placed event (occurredAt) to its saga ending, by outcome',
      labelNames: ['outcome'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    sagaOutcomes: new Counter({
      name: 'kts_saga_outcomes_total',
      help: 'Sagas ended, by terminal state (CONFIRMED, FAILED, RESOLVED_MANUALLY, ABANDONED, COMPENSATION_FAILED)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    compensations: new Counter({
      name: 'kts_compensations_total',
      help: 'Compensation activities that completed, by step',
      labelNames: ['step'] as const,
      registers: [registry],
    }),
    compensationFailed: new Counter({
      name: 'kts_compensation_failed_total',
      help: 'Compensations that exhausted their retries (each parks its saga for an operator): each one needs a human',
      registers: [registry],
    }),
    blockedRecord: new Gauge({
      name: 'kts_ingress_blocked_record_attempts',
      help: 'A record the ingress handler keeps failing on (its partition is paused): failed attempts so far, by position',
      labelNames: ['topic', 'partition', 'offset'] as const,
      registers: [registry],
    }),
    replicationSlotLagBytes: new Gauge({
      name: 'kts_replication_slot_lag_bytes',
      help: "WAL bytes the logical replication slot's consumer (Debezium) has not confirmed yet",
      labelNames: ['slot'] as const,
      registers: [registry],
    }),
    replicationSlotRetainedWalBytes: new Gauge({
      name: 'kts_replication_slot_retained_wal_bytes',
      help: 'WAL bytes PostgreSQL keeps on disk for the replication slot (from its restart_lsn)',
      labelNames: ['slot'] as const,
      registers: [registry],
    }),
    replicationSlotSafeWalBytes: new Gauge({
      name: 'kts_replication_slot_safe_wal_bytes',
      help:
        'WAL bytes that can still be written before the slot passes max_slot_wal_keep_size and PostgreSQL ' +
        'invalidates it (absent when the size is unlimited)',
      labelNames: ['slot'] as const,
      registers: [registry],
    }),
    replicationSlotLost: new Gauge({
      name: 'kts_replication_slot_lost',
      help: '1 when PostgreSQL has invalidated the slot (its WAL is gone): Debezium must snapshot again',
      labelNames: ['slot'] as const,
      registers: [registry],
    }),
    sagasParked: new Gauge({
      name: 'kts_sagas_parked',
      help: 'Open sagas PARKED on a compensation that exhausted its retries, waiting for an operator (Temporal visibility)',
      labelNames: ['task_queue'] as const,
      registers: [registry],
    }),
    sagasParkedOverdue: new Gauge({
      name: 'kts_sagas_parked_overdue',
      help: 'Parked sagas waiting longer than KTS_PARKED_ALERT_AFTER_SECONDS for a decision (Temporal visibility)',
      labelNames: ['task_queue'] as const,
      registers: [registry],
    }),
    sagasInFlight: new Gauge({
      name: 'kts_sagas_in_flight',
      help: 'Running orderSaga workflows on the saga task queue, from Temporal visibility',
      labelNames: ['task_queue'] as const,
      registers: [registry],
    }),
    loyaltyOutcomes: new Counter({
      name: 'kts_loyalty_events_processed_total',
      help: 'Events the loyalty service applied (one transaction each), by what applying them did',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    loyaltyPoints: new Counter({
      name: 'kts_loyalty_points_total',
      help: 'Loyalty points awarded and revoked',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Default /metrics port of each kind of process, chosen so they can all run on one host at once.
 * A single-service worker gets its own port, so the five can run side by side too.
 */
export const METRICS_PORTS = {
  main: 9464,
  ingress: 9465,
  workers: 9466,
  api: 9467,
  eventStore: 9468,
  outboxCleaner: 9469,
  loyalty: 9475,
  'worker-saga': 9470,
  'worker-orders': 9471,
  'worker-inventory': 9472,
  'worker-payments': 9473,
  'worker-notifications': 9474,
} as const;
export type MetricsProcess = keyof typeof METRICS_PORTS;

/** Where a process serves /metrics (the common section of the settings). */
export interface MetricsListen {
  host: string;
  /** Unset: the process's default port (METRICS_PORTS); 0 picks a free one. */
  port?: number;
}

/** Creates the registry of one process and serves it; what every entry point does first. */
export async function startMetrics(
  process: MetricsProcess,
  listen: MetricsListen,
): Promise<{ metrics: Metrics; port: number; url: string; close: () => Promise<void> }> {
  const metrics = createMetrics(process);
  const server = await serveMetrics(metrics.registry, listen.port ?? METRICS_PORTS[process], listen.host);
  return { metrics, port: server.port, url: `http://${listen.host}:${server.port}/metrics`, close: server.close };
}

/** Serves GET /metrics on `host` (127.0.0.1 unless told); port 0 picks a free one. Resolves with the bound port. */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host = '127.0.0.1',
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    registry
      .metrics()
      .then((body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body))
      .catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
