/**
 * `orders parked list | show | retry | resolve | abandon` as an operator runs it: the real CLI in a
 * child process against a saga parked on the real Temporal server (its refund keeps failing).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import { FailureType, sagaStatusQuery } from '../../src/shared/saga-contract';
import type { orderSaga } from '../../workflows';
import type { SagaHarness } from '../support/saga-harness';
import { CALM_GATEWAY, newOrder, openSagaHarness, stockedSku, withSagaWorkers } from '../support/saga-harness';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(180_000);

const ROOT = path.join(__dirname, '..', '..');
/** Set once the charge went through: from then on the card gateway is down. */
let refunding = false;

/** Runs the CLI; resolves with its exit code and output whatever the code. */
async function orders(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli/orders.ts', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, KTS_OPERATOR: '', USER: '' },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('orders parked (CLI)', () => {
  let h: SagaHarness;
  const started: WorkflowHandle<typeof orderSaga>[] = [];
  beforeAll(async () => {
    h = await openSagaHarness();
  });
  afterAll(async () => {
    for (const s of started) await s.terminate('test cleanup').catch(() => undefined);
    await h.close();
  });

  it('lists and shows a parked saga, refuses incomplete or misplaced decisions, and resolves it', async () => {
    const sku = await stockedSku(h, 3);
    const order = newOrder(sku, 1);
    await withSagaWorkers(
      h,
      {
        // Every refund attempt meets a gateway that is down; the charge before it went through.
        gateway: { ...CALM_GATEWAY, transientErrorRate: 0.5, random: () => (refunding ? 0 : 0.99) },
        override: () => ({
          orders: {
            confirmOrder: () => {
              refunding = true;
              return Promise.reject(ApplicationFailure.nonRetryable('failed meanwhile', FailureType.OrderNotPending));
            },
          },
        }),
      },
      async (run) => {
        const handle = await run.start(order);
        started.push(handle);
        await waitUntil('the saga to park', async () => (await handle.query(sagaStatusQuery)).state === 'PARKED');
        const tq = run.taskQueues.saga;

        await waitUntil('the CLI to list the parked saga', async () =>
          (await orders('parked', 'list', '--task-queue', tq)).stdout.includes(order.orderId),
        );
        const listed = await orders('parked', 'list', '--task-queue', tq, '--json');
        expect(listed.code).toBe(0);
        expect(JSON.parse(listed.stdout.trim())).toMatchObject({
          orderId: order.orderId,
          state: 'PARKED',
          failedStep: 'refundPayment',
          customerId: order.customerId,
          totalMinor: 2_500,
          currency: 'EUR',
        });

        const shown = await orders('parked', 'show', order.orderId);
        expect(shown.code).toBe(0);
        expect(shown.stdout).toContain('state      PARKED');
        expect(shown.stdout).toContain('stuck      refundPayment: GatewayUnavailable');
        expect(shown.stdout).toContain(`summary    order ${order.orderId} · customer ${order.customerId} · 25.00 EUR`);

        const noReason = await orders('parked', 'resolve', order.orderId, '--operator', 'alice');
        expect(noReason.code).toBe(1);
        expect(noReason.stderr.trim()).toBe('a reason is required to resolve a parked saga');
        const noOperator = await orders('parked', 'abandon', order.orderId, '--reason', 'why not');
        expect(noOperator.code).toBe(1);
        expect(noOperator.stderr.trim()).toBe('who decides? pass --operator <name> (or set KTS_OPERATOR)');
        const unknown = await orders('parked', 'retry', `${order.orderId}-nope`, '--operator', 'alice');
        expect(unknown.code).toBe(1);
        expect(unknown.stderr.trim()).toBe(
          `no saga for order ${order.orderId}-nope (workflow order-${order.orderId}-nope)`,
        );
        expect((await handle.query(sagaStatusQuery)).state).toBe('PARKED');

        const resolved = await orders(
          'parked',
          'resolve',
          order.orderId,
          '--operator',
          'alice',
          '--reason',
          'refunded by hand',
        );
        expect(resolved.code).toBe(0);
        expect(resolved.stdout).toContain(`RESOLVE_MANUALLY recorded for order ${order.orderId}`);
        expect(resolved.stdout).toMatch(/decision .* RESOLVE_MANUALLY by alice: refunded by hand/);
        expect((await handle.result()).status.state).toBe('RESOLVED_MANUALLY');

        const again = await orders('parked', 'retry', order.orderId, '--operator', 'bob');
        expect(again.code).toBe(1);
        expect(again.stderr.trim()).toBe(
          `order ${order.orderId} is not parked: its saga is COMPLETED (state RESOLVED_MANUALLY)`,
        );
        const after = await orders('parked', 'list', '--task-queue', tq);
        await waitUntil(
          'the resolved saga to leave the list',
          async () => !(await orders('parked', 'list', '--task-queue', tq)).stdout.includes(order.orderId),
        );
        expect(after.code).toBe(0);
      },
    );
  });
});
