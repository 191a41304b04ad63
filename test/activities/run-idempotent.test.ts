import type pg from 'pg';

import { createPgPool } from '../../src/config/clients';
import { BusinessRejection, runIdempotent } from '../../src/db/idempotent';
import { FailureType } from '../../src/shared/saga-contract';
import type { DbHarness } from '../support/db-harness';
import { openDb } from '../support/db-harness';
import { allSettings } from '../support/settings';
import { uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

// runIdempotent on the real PostgreSQL, in the orders schema, through a pool of its own name, so the
// lock wait below is this test's and no other suite's.
describe('runIdempotent on PostgreSQL', () => {
  const app = uniqueName('it-idempotent');
  let db: DbHarness;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await openDb(1);
    pool = createPgPool(db.cfg.owners.orders.url, allSettings.postgres, { max: 2, applicationName: app });
  });
  afterAll(async () => {
    await pool.end();
    await db.close();
  });

  const keyRow = async (key: string) =>
    (
      await db.admin.query<{ operation: string; outcome: unknown }>(
        'SELECT operation, outcome FROM orders.idempotency_keys WHERE key = $1',
        [key],
      )
    ).rows;

  it('records a refusal that keeps no writes, undoes its writes, and answers a repeat without running', async () => {
    const key = uniqueName('refused');
    const orderId = uniqueName('ord');
    const refuse = async (tx: pg.PoolClient) => {
      await tx.query(
        "INSERT INTO orders.orders (order_id, customer_id, currency, total_minor, status) VALUES ($1, 'c', 'EUR', 1, 'PENDING')",
        [orderId],
      );
      throw new BusinessRejection(FailureType.InvalidOrder, 'invalid order: test');
    };
    await expect(runIdempotent(pool, 'orders', key, 'createOrder', refuse)).rejects.toMatchObject({
      type: FailureType.InvalidOrder,
      nonRetryable: true,
    });
    let ranAgain = false;
    const repeat = runIdempotent(pool, 'orders', key, 'createOrder', () => {
      ranAgain = true;
      return Promise.resolve('should not run');
    });
    await expect(repeat).rejects.toMatchObject({ type: FailureType.InvalidOrder, message: 'invalid order: test' });
    expect(ranAgain).toBe(false);
    expect(await keyRow(key)).toEqual([
      {
        operation: 'createOrder',
        outcome: { status: 'rejected', type: 'InvalidOrder', message: 'invalid order: test' },
      },
    ]);
    const orders = await db.admin.query('SELECT 1 FROM orders.orders WHERE order_id = $1', [orderId]);
    expect(orders.rowCount).toBe(0);
  });

  it('a duplicate waiting on a step that is refused runs the step itself; both callers get the first recorded outcome', async () => {
    const key = uniqueName('race');
    let entered!: () => void;
    const firstInWork = new Promise<void>((resolve) => (entered = resolve));
    let refuseNow!: () => void;
    const refusal = new Promise<void>((resolve) => (refuseNow = resolve));
    const first = runIdempotent(pool, 'orders', key, 'createOrder', async () => {
      entered();
      await refusal;
      throw new BusinessRejection(FailureType.InvalidOrder, 'first attempt refused');
    });
    await firstInWork;
    const second = runIdempotent(pool, 'orders', key, 'createOrder', () => Promise.resolve('second attempt done'));
    // The duplicate's claim waits on the first's uncommitted key row.
    await waitUntil(
      'the duplicate to wait on the key row',
      async () =>
        (
          await db.admin.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [app],
          )
        ).rows[0]?.n,
      (n) => n === 1,
      { timeoutMs: 10_000 },
    );
    refuseNow();
    await expect(second).resolves.toBe('second attempt done');
    await expect(first).resolves.toBe('second attempt done');
    expect(await keyRow(key)).toEqual([
      { operation: 'createOrder', outcome: { status: 'done', value: 'second attempt done' } },
    ]);
  });
});
