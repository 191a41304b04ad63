import os from 'node:os';
import path from 'node:path';

import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';

import { orderWorkflowId } from '../../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../../src/simulated-external/card-gateway';
import { newOrder } from '../support/saga-harness';
import { endpoints } from '../support/stack';
import type { RunningSystem } from '../support/system';
import { startSystem } from '../support/system';

jest.setTimeout(180_000);

/** The orchestrator and the four services, started as their processes start them. */
const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications'] as const;

/** Debian's chromium (apt-get install chromium); npm test installs it when missing. */
const CHROMIUM = process.env.KTS_CHROMIUM ?? '/usr/bin/chromium';

describe('the Temporal Web UI of the local stack', () => {
  let system: RunningSystem<(typeof ROLES)[number]>;
  let browser: Browser;

  beforeAll(async () => {
    system = await startSystem(ROLES);
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
    await browser?.close();
    await system?.stop();
  });

  it('finds a compensated saga by its workflow id and shows its compensation activities', async () => {
    // A declined card after stock was reserved: the saga releases the stock and fails the order.
    const sku = await system.stockedSku(5);
    const order = newOrder(sku, 2, DECLINED_CARD_TOKEN);
    const workflowId = orderWorkflowId(order.orderId);
    const result = await (await system.start(order)).result();
    expect(result.outcome).toBe('FAILED');

    const page = await browser.newPage();
    try {
      // Search the workflow list as a user would, by workflow id.
      const query = encodeURIComponent(`WorkflowId="${workflowId}"`);
      await page.goto(`${endpoints.temporalUiUrl}/namespaces/default/workflows?query=${query}`);
      const link = page.getByRole('link', { name: workflowId });
      await link.first().waitFor({ timeout: 60_000 });
      await link.first().click();

      await page.waitForURL(/\/workflows\/order-/, { timeout: 30_000 });
      // The Event History tab lists every event; each scheduled activity row names its activity type.
      await page.getByText('Event History').first().click();
      const rows = page.locator('[data-testid="event-summary-row"]');
      await rows.filter({ hasText: 'releaseStock' }).first().waitFor({ timeout: 60_000 });
      const scheduled = (await rows.filter({ hasText: 'Activity Task Scheduled' }).allInnerTexts())
        .map((row) => {
          const eventId = Number(/^\s*(\d+)/.exec(row)?.[1]);
          const activityType = /Activity Type\s+(\w+)/.exec(row)?.[1];
          return { eventId, activityType };
        })
        .sort((a, b) => a.eventId - b.eventId)
        .map((e) => e.activityType);
      // Forward steps (the saga acknowledges the order to the customer right after creating it) up to
      // the declined charge, then the compensations in reverse order and the failure notice.
      expect(scheduled).toEqual([
        'createOrder',
        'notifyCustomer',
        'reserveStock',
        'chargePayment',
        'releaseStock',
        'failOrder',
        'notifyCustomer',
      ]);
      expect(await page.locator('main').innerText()).toContain(workflowId);
      await page.screenshot({ path: path.join(os.tmpdir(), 'kts-temporal-ui-compensated.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });
});
