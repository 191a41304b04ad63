import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import path from 'node:path';

import { idempotencyKey, sagaStatusQuery } from '../../src/shared/saga-contract';
import { createSagaWorkers, runWorkersUntil } from '../../workers/saga-workers';
import { stockOf } from '../support/db-harness';
import type { SagaHarness } from '../support/saga-harness';
import { newOrder, openSagaHarness, stockedSku, withSagaWorkers } from '../support/saga-harness';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(180_000);

const ROOT = path.resolve(__dirname, '..', '..');

/** The real payments worker entry point in its own process group, so the test can kill it outright. */
function spawnPaymentsWorker(taskQueuePrefix: string): ChildProcess {
  return spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['src/services/payments/payments-worker.ts'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      KTS_SCOPE: taskQueuePrefix,
      LOG_LEVEL: 'warn',
      KTS_METRICS_PORT: '0',
      // The gateway books the charge at once and then takes a minute to answer: the worker dies
      // holding a charge it never heard about, the hardest moment for a crash.
      KTS_GATEWAY_LATENCY_MIN_MS: '60000',
      KTS_GATEWAY_LATENCY_MAX_MS: '60000',
    },
  });
}

describe('a worker killed mid-activity', () => {
  let h: SagaHarness;
  beforeAll(async () => {
    h = await openSagaHarness();
  });
  afterAll(() => h.close());

  it('after the payments worker dies mid-charge, the saga completes once and the card is charged once', async () => {
    const sku = await stockedSku(h, 5);
    const order = newOrder(sku, 2);
    const chargeKey = idempotencyKey(`order-${order.orderId}`, 'chargePayment');
    const gatewayRequests = async () =>
      (
        await h.db.admin.query<{ result: string }>(
          'SELECT result FROM card_gateway.requests WHERE idempotency_key = $1 ORDER BY request_id',
          [chargeKey],
        )
      ).rows.map((r) => r.result);

    await withSagaWorkers(
      h,
      { roles: ['saga', 'orders', 'inventory', 'notifications'] },
      async ({ start, taskQueuePrefix, taskQueues, activities }) => {
        const child = spawnPaymentsWorker(taskQueuePrefix);
        const exited = new Promise<NodeJS.Signals | null>((resolve) =>
          child.once('exit', (_code, signal) => resolve(signal)),
        );
        let handle;
        try {
          // A short attempt timeout so the server hands the charge to another worker soon after the kill.
          handle = await start(order, { activityTimeoutMs: 5_000 });
          await waitUntil('the gateway to book the charge', async () => (await gatewayRequests()).includes('captured'));
          expect((await handle.query(sagaStatusQuery)).currentStep).toBe('chargePayment');
        } finally {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        }
        expect(await exited).toBe('SIGKILL');

        // A fresh payments worker takes over the retried attempt.
        const replacement = await createSagaWorkers({
          connection: h.workerConnection,
          taskQueues,
          roles: ['payments'],
          activities,
        });
        const result = await runWorkersUntil(replacement, () => handle.result());
        expect(result.outcome).toBe('CONFIRMED');
        expect(result.status.completedSteps).toEqual([
          'createOrder',
          'reserveStock',
          'chargePayment',
          'confirmOrder',
          'notifyCustomer',
        ]);

        // The history shows the charge really ran twice: it completed on its second attempt.
        const history = await handle.fetchHistory();
        const attempts = (history.events ?? [])
          .map((e) => e.activityTaskStartedEventAttributes?.attempt)
          .filter((a): a is number => typeof a === 'number');
        expect(Math.max(...attempts)).toBe(2);
      },
    );

    // Two requests reached the gateway under one key, and it booked one charge.
    expect(await gatewayRequests()).toEqual(['captured', 'captured']);
    const charges = await h.db.admin.query<{ outcome: string; amount_minor: string; refunded_minor: string }>(
      'SELECT outcome, amount_minor, refunded_minor FROM card_gateway.charges WHERE idempotency_key = $1',
      [chargeKey],
    );
    expect(charges.rows).toEqual([{ outcome: 'captured', amount_minor: '5000', refunded_minor: '0' }]);
    const payments = await h.db.admin.query('SELECT status FROM payments.payments WHERE order_id = $1', [
      order.orderId,
    ]);
    expect(payments.rows).toEqual([{ status: 'CAPTURED' }]);
    expect(await stockOf(h.db, sku)).toBe(3);
    const notices = await h.db.admin.query(
      'SELECT kind FROM notifications.notifications WHERE order_id = $1 ORDER BY kind',
      [order.orderId],
    );
    expect(notices.rows).toEqual([{ kind: 'ORDER_CONFIRMED' }, { kind: 'ORDER_RECEIVED' }]);
    const orderRow = await h.db.admin.query('SELECT status FROM orders.orders WHERE order_id = $1', [order.orderId]);
    expect(orderRow.rows).toEqual([{ status: 'CONFIRMED' }]);
  });
});
