import { outboxEventId } from '../../src/outbox/event-id';
import { createNotificationsActivities } from '../../src/services/notifications/notifications-activities';
import type { DbHarness } from '../support/db-harness';
import { openDb, outboxEvents, recordingChannel, runActivity } from '../support/db-harness';
import { uniqueName } from '../support/stack';

describe('notifications activities', () => {
  let db: DbHarness;
  beforeAll(async () => {
    db = await openDb();
  });
  afterAll(() => db.close());

  it('notifyCustomer records and delivers a notice once; a second run sends nothing', async () => {
    const channel = recordingChannel();
    const acts = createNotificationsActivities({ db: db.pools.notifications, channel, outbox: db.outbox });
    const orderId = uniqueName('ord');
    const input = {
      idempotencyKey: `order-${orderId}/notifyFailed`,
      orderId,
      customerId: 'cust-9',
      kind: 'ORDER_FAILED' as const,
      reason: 'PaymentDeclined',
    };
    const first = await runActivity(acts.notifyCustomer, input);
    const second = await runActivity(acts.notifyCustomer, input);
    expect(second).toEqual(first);
    expect(channel.delivered).toHaveLength(1);
    expect(channel.delivered[0]).toMatchObject({ orderId, kind: 'ORDER_FAILED', customerId: 'cust-9' });
    const { rows } = await db.admin.query<{ kind: string; channel: string; message: string }>(
      'SELECT kind, channel, message FROM notifications.notifications WHERE order_id = $1',
      [orderId],
    );
    expect(rows).toEqual([{ kind: 'ORDER_FAILED', channel: 'recording', message: first.message }]);
    expect(first.message).toContain('PaymentDeclined');
    expect(await outboxEvents(db, 'notifications', orderId)).toEqual([
      {
        topic: `${db.outbox.topicPrefix}.notifications.notification-sent`,
        aggregateType: 'order',
        aggregateId: orderId,
        type: 'notifications.notification-sent',
        event: {
          eventId: outboxEventId(input.idempotencyKey, 'notifications.notification-sent'),
          eventType: 'notifications.notification-sent',
          eventVersion: 1,
          occurredAt: expect.any(Number) as number,
          orderId,
          customerId: 'cust-9',
          kind: 'ORDER_FAILED',
          channel: 'recording',
        },
      },
    ]);
  });

  it('a channel that fails leaves no record, so the retry delivers', async () => {
    let calls = 0;
    const flaky = recordingChannel();
    const channel = {
      name: 'flaky',
      deliver: async (n: Parameters<typeof flaky.deliver>[0]) => {
        calls += 1;
        if (calls === 1) throw new Error('smtp timeout');
        await flaky.deliver(n);
      },
    };
    const acts = createNotificationsActivities({ db: db.pools.notifications, channel, outbox: db.outbox });
    const orderId = uniqueName('ord');
    const input = { idempotencyKey: uniqueName('k'), orderId, customerId: 'c', kind: 'ORDER_CONFIRMED' as const };
    await expect(runActivity(acts.notifyCustomer, input)).rejects.toThrow('smtp timeout');
    await runActivity(acts.notifyCustomer, input);
    await runActivity(acts.notifyCustomer, input);
    expect(flaky.delivered).toHaveLength(1);
    const { rows } = await db.admin.query('SELECT kind FROM notifications.notifications WHERE order_id = $1', [
      orderId,
    ]);
    expect(rows).toEqual([{ kind: 'ORDER_CONFIRMED' }]);
    // The failed attempt's event was rolled back with its record: one event, from the attempt that sent.
    const events = await outboxEvents(db, 'notifications', orderId);
    expect(events.map((e) => e.event)).toMatchObject([{ kind: 'ORDER_CONFIRMED', channel: 'flaky' }]);
  });
});
