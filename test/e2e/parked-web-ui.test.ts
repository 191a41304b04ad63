/**
 * The Web UI tells a parked saga's story: an operator filters the workflow list by the saga's search
 * attributes (OrderState = "PARKED"), opens the saga and reads its summary, what it is waiting for
 * (current details: the failed step) and the summary of each activity. Real Temporal server and Web
 * UI, real services; headless Debian chromium driven by playwright-core.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';

import { decideParked, listParkedSagas } from '../../src/cli/parked-sagas';
import { FailureType, orderWorkflowId, sagaStatusQuery } from '../../src/shared/saga-contract';
import type { orderSaga } from '../../workflows';
import { newOrder } from '../support/saga-harness';
import { endpoints } from '../support/stack';
import type { RunningSystem } from '../support/system';
import { failActivity, startSystem } from '../support/system';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(240_000);

/** Debian's chromium (apt-get install chromium); npm test installs it when missing. */
const CHROMIUM = process.env.KTS_CHROMIUM ?? '/usr/bin/chromium';

/** The orchestrator and the four services, started as their processes start them. */
const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications'] as const;

describe('parked sagas in the Temporal Web UI', () => {
  let system: RunningSystem<(typeof ROLES)[number]>;
  let browser: Browser;
  const started: WorkflowHandle<typeof orderSaga>[] = [];
  /** Once the order has failed meanwhile, the gateway answers every refund with a transient error. */
  let gatewayDown = false;

  beforeAll(async () => {
    system = await startSystem(ROLES, {
      // Half of the requests fail transiently, and the gateway's dice decide which: never, then always.
      env: { KTS_GATEWAY_TRANSIENT_ERROR_RATE: '0.5' },
      gatewayRandom: () => (gatewayDown ? 0 : 0.99),
      activityInterceptors: [
        failActivity(
          'confirmOrder',
          () => true,
          () => {
            gatewayDown = true;
            return ApplicationFailure.nonRetryable('failed meanwhile', FailureType.OrderNotPending);
          },
        ),
      ],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // This machine has no network beyond loopback: keep Chromium from reaching out at all.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    for (const s of started) await s.terminate('test cleanup').catch(() => undefined);
    await browser?.close();
    await system?.stop();
  });

  it('lists parked sagas with a filter, opens one, and shows its failed step and summaries', async () => {
    const sku = await system.stockedSku(4);
    const order = newOrder(sku, 2);
    const workflowId = orderWorkflowId(order.orderId);
    const handle = await system.start(order);
    started.push(handle);
    await waitUntil('the saga to park', async () => (await handle.query(sagaStatusQuery)).state === 'PARKED');
    await waitUntil(
      'visibility to index the parked saga',
      async () => (await listParkedSagas(system.client, { taskQueue: system.taskQueues.saga })).length === 1,
    );

    const page = await browser.newPage();
    try {
      // The operator's filter: every parked saga (narrowed to this test's task queue).
      const query = encodeURIComponent(`OrderState="PARKED" AND TaskQueue="${system.taskQueues.saga}"`);
      await page.goto(`${endpoints.temporalUiUrl}/namespaces/default/workflows?query=${query}`);
      const link = page.getByRole('link', { name: workflowId });
      await link.first().waitFor({ timeout: 60_000 });
      const list = await page.locator('main').innerText();
      await page.screenshot({ path: path.join(os.tmpdir(), 'kts-web-ui-parked-list.png'), fullPage: true });
      await writeFile(path.join(os.tmpdir(), 'kts-web-ui-parked-list.txt'), list);
      await link.first().click();
      await page.waitForURL(/\/workflows\/order-/, { timeout: 30_000 });

      // The timeline names each activity with its summary.
      await page.getByText('chargePayment • charge 50.00 EUR').first().waitFor({ timeout: 60_000 });
      const timeline = await page.locator('main').innerText();
      for (const line of [
        'chargePayment • charge 50.00 EUR',
        `reserveStock • reserve 2 × ${sku}`,
        `releaseStock • release 2 × ${sku}`,
        'refundPayment • refund 50.00 EUR',
      ]) {
        expect([line, timeline.includes(line)]).toEqual([line, true]);
      }

      // User Metadata: the saga's summary and details (customer, total, lines), and what it waits for.
      await page.getByText('User Metadata').first().click();
      // The UI renders summary and details as Markdown in sandboxed frames: read every frame's text.
      const everyFrame = async () =>
        (
          await Promise.all(
            page.frames().map((f) =>
              f
                .locator('body')
                .innerText()
                .catch(() => ''),
            ),
          )
        ).join('\n');
      await waitUntil('the current details to show', async () => (await everyFrame()).includes('Parked since'));
      const metadata = await everyFrame();
      await page.screenshot({ path: path.join(os.tmpdir(), 'kts-web-ui-parked-saga.png'), fullPage: true });
      expect(metadata).toContain(`order ${order.orderId} · customer ${order.customerId} · 50.00 EUR`);
      expect(metadata).toMatch(/Total\s+50\.00 EUR/);
      expect(metadata).toMatch(/Parked since \S+: refundPayment \(GatewayUnavailable: [^)]*\)\) exhausted its retries/);
      expect(metadata).toContain(`orders parked retry | resolve | abandon ${order.orderId}`);

      // Search Attributes: the failed step, state, customer and total.
      await page.getByText('Search Attributes').first().click();
      await page.getByText('"FailedStep": "refundPayment"').first().waitFor({ timeout: 30_000 });
      const attributes = await page.locator('main').innerText();
      expect(attributes).toContain('"OrderState": "PARKED"');
      expect(attributes).toContain(`"CustomerId": "${order.customerId}"`);
      expect(attributes).toContain('"OrderTotalMinor": 5000');
    } finally {
      await page.close();
    }
    // Leave nothing parked behind: the operator resolves it.
    await decideParked(system.client, order.orderId, {
      decision: 'RESOLVE_MANUALLY',
      operator: 'web-ui-test',
      reason: 'test over',
    });
    expect((await handle.result()).status.state).toBe('RESOLVED_MANUALLY');
  });
});
