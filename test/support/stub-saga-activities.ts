import pg from 'pg';

import { endpoints } from './stack';

/** Test-only table: one row per stub saga run. No unique key on purpose, so a second saga would show. */
export const STUB_TABLE = 'ingress_test.stub_sagas';

export async function ensureStubTable(): Promise<void> {
  const client = new pg.Client({ connectionString: endpoints.postgresUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(7301907043)');
    await client.query('CREATE SCHEMA IF NOT EXISTS ingress_test');
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${STUB_TABLE} (
         order_id text NOT NULL, workflow_id text NOT NULL, run_id text NOT NULL, task_queue text NOT NULL,
         outcome text NOT NULL, total_minor bigint NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())`,
    );
    await client.query(`CREATE INDEX IF NOT EXISTS stub_sagas_tq_idx ON ${STUB_TABLE} (task_queue)`);
  } finally {
    await client.query('SELECT pg_advisory_unlock(7301907043)');
    await client.end();
  }
}

export interface StubSagaRecord {
  orderId: string;
  workflowId: string;
  runId: string;
  taskQueue: string;
  outcome: 'CHARGED' | 'CANCELLED';
  totalMinor: number;
}

/** The stub saga's only effect: a "charge" (or a cancellation) row per run. */
export function createStubSagaActivities(pool: pg.Pool) {
  return {
    async recordStubSaga(r: StubSagaRecord): Promise<void> {
      await pool.query(
        `INSERT INTO ${STUB_TABLE} (order_id, workflow_id, run_id, task_queue, outcome, total_minor)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [r.orderId, r.workflowId, r.runId, r.taskQueue, r.outcome, r.totalMinor],
      );
    },
  };
}
export type StubSagaActivities = ReturnType<typeof createStubSagaActivities>;
