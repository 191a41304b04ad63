/**
 * The hybrid end to end on the real stack: orders placed through Kafka (as the main job and the
 * ingress take them) run the orchestrated saga; its order.confirmed goes outbox → Debezium → Kafka,
 * where the choreographed loyalty service (its own consumer group, started by startRoles like the
 * main job starts it) awards points; its own outbox → Debezium → Kafka → the event store puts them
 * in the order's story, as `orders history` shows it.
 */
import pg from 'pg';

import { placedEvent } from '../../src/cli/order-events';
import type { OrderPlacedV2 } from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import { prefixedTopic } from '../../src/outbox/outbox-constants';
import { pointsFor } from '../../src/services/loyalty/loyalty-events';
import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import { ordersCli } from '../support/drill-roles';
import { produce } from '../support/ingress-harness';
import { provisionScope } from '../support/provision-scope';
import { endpoints, uniqueName } from '../support/stack';
import type { RunningSystem } from '../support/system';
import { startSystem } from '../support/system';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

/** The roles the flow passes through: the saga's, the ingress, the event store and loyalty. */
const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications', 'eventStore', 'loyalty', 'ingress'] as const;

let cdc: CdcScope;
let system: RunningSystem<(typeof ROLES)[number]>;
const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 2 });

beforeAll(async () => {
  const prefix = uniqueName('loyflow');
  // Topics (loyalty.dlq too) and subjects of the scope; its own connector over the shared outbox tables.
  await provisionScope(prefix, { include: ['topic', 'subject'] });
  cdc = await startCdcScope('loyflow', { prefix });
  system = await startSystem(ROLES, { scope: prefix });
});

afterAll(async () => {
  await system?.stop();
  await cdc?.stop();
  await db.end();
});

async function orderPoints(orderId: string): Promise<{ awarded: number; outcome: string } | undefined> {
  const { rows } = await db.query<{ awarded_points: string; outcome: string }>(
    `SELECT p.awarded_points, e.outcome FROM loyalty.order_points p
       JOIN loyalty.processed_events e ON e.event_id = p.confirmed_event_id WHERE p.order_id = $1`,
    [orderId],
  );
  const r = rows[0];
  return r && { awarded: Number(r.awarded_points), outcome: r.outcome };
}

describe('order placed on Kafka → saga → order.confirmed via CDC → loyalty (choreographed) → history', () => {
  it("awards a member exactly pointsFor(total), a non-member nothing, and history tells the member's points", async () => {
    const sku = await system.stockedSku(1_000);
    const customer = uniqueName('member');
    const member = placedEvent({ version: 2, isLoyaltyMember: true, skus: [sku] }) as OrderPlacedV2;
    member.userId = customer;
    const guest = placedEvent({ version: 2, isLoyaltyMember: false, skus: [sku] }) as OrderPlacedV2;
    const placed = prefixedTopic(system.scope, TOPICS.orderPlaced);
    await produce(placed, [{ event: member }, { event: guest }]);

    for (const e of [member, guest]) {
      // The ingress starts the saga once it has read the record: wait for the workflow to exist.
      const handle = system.client.workflow.getHandle(orderWorkflowId(e.orderId));
      await waitUntil(
        'the saga started by the ingress',
        () => handle.describe(),
        () => true,
        { retryOnError: true },
      );
      expect(((await handle.result()) as OrderSagaResult).outcome).toBe('CONFIRMED');
    }
    const expected = pointsFor({ isLoyaltyMember: true, totalMinor: member.totalMinor, currency: member.currency });
    expect(expected).toBeGreaterThan(0);
    // The loyalty service heard of the confirmations only through Kafka (the saga never calls it).
    await waitUntil(
      'both confirmations handled by loyalty',
      async () => [await orderPoints(member.orderId), await orderPoints(guest.orderId)],
      ([m, g]) => m !== undefined && g !== undefined,
      { timeoutMs: 120_000 },
    );
    expect(await orderPoints(member.orderId)).toEqual({ awarded: expected, outcome: 'AWARDED' });
    expect(await orderPoints(guest.orderId)).toEqual({ awarded: 0, outcome: 'NO_POINTS' });
    expect(await system.running.loyalty!.ledger.balance(customer)).toBe(expected);
    expect(await system.running.loyalty!.ledger.totalsFor([member.orderId, guest.orderId])).toEqual({
      confirmationsHandled: 2,
      ordersAwarded: 1,
      pointsAwarded: expected,
      pointsRevoked: 0,
    });

    // The award's event reached the event store (loyalty outbox → Debezium → Kafka) under the order's id.
    const store = system.running.eventStore!.store;
    const story = await waitUntil(
      "the award in the member order's story",
      () => store.history(member.orderId),
      (h) => h.some((e) => e.eventType === TOPICS.loyaltyPointsAwarded),
      { timeoutMs: 120_000 },
    );
    const types = story.map((e) => e.eventType);
    expect(types.indexOf(TOPICS.loyaltyPointsAwarded)).toBeGreaterThan(types.indexOf(TOPICS.orderConfirmed));
    expect(types.filter((t) => t.startsWith('loyalty.'))).toEqual([TOPICS.loyaltyPointsAwarded]);

    // `orders history`, as an operator runs it.
    const text = await ordersCli(['history', member.orderId]);
    expect(text).toMatch(new RegExp(`loyalty\\.points-awarded v1 .*\\+${expected} points to ${customer}`));
    const json = JSON.parse(await ordersCli(['history', member.orderId, '--json'])) as {
      state: { status: string; loyaltyPoints: number };
    };
    expect(json.state).toMatchObject({ status: 'CONFIRMED', loyaltyPoints: expected });

    // The non-member's story has its confirmation and no loyalty event.
    const guestStory = await store.history(guest.orderId);
    expect(guestStory.map((e) => e.eventType)).toContain(TOPICS.orderConfirmed);
    expect(guestStory.filter((e) => e.eventType.startsWith('loyalty.'))).toEqual([]);
  });
});
