/**
 * Event store commands of the `orders` CLI:
 *   orders history <orderId> [--at <timestamp>] [--json]   events and the state rebuilt at an instant
 *   orders replay-events --to-topic <t> [--type <t,...>] [--since <ts>] [--until <ts>] [--order <id>]
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { logLevel } from 'kafkajs';

import { createKafka, createPgPool, createProducer } from '../config/clients';
import type { Settings } from '../config/settings';
import { loadSettings } from '../config/settings';
import { EventStore } from '../event-store/event-store';
import { rebuildOrderState } from '../event-store/order-state';
import { replayToTopic } from '../event-store/replay';
import { verifySchema } from '../provision/verify';

function instant(v: string): Date {
  // An ISO timestamp or epoch milliseconds.
  const d = /^\d+$/.test(v) ? new Date(Number(v)) : new Date(v);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('must be an ISO timestamp or epoch milliseconds');
  return d;
}

/** The event store role's settings, parsed once per command (the store must be provisioned). */
function storeSettings(): Settings<'eventStore'> {
  return loadSettings(['eventStore'], process.env, { refuseForeignCredentials: false });
}

async function withStore<T>(settings: Settings<'eventStore'>, fn: (store: EventStore) => Promise<T>): Promise<T> {
  await verifySchema('event_store', settings.roles.eventStore.pgUrl, settings.postgres.ssl);
  const pool = createPgPool(settings.roles.eventStore.pgUrl, settings.postgres, {
    max: 2,
    applicationName: 'kts-orders-cli',
  });
  try {
    return await fn(new EventStore(pool));
  } finally {
    await pool.end();
  }
}

/** A few words after an event's line where the type alone does not say enough (who decided what, and why). */
export function describeEvent(eventType: string, payload: Record<string, unknown>): string {
  // The choreographed loyalty service's reaction to the order's confirmation (or to what undid it).
  if (eventType === 'loyalty.points-awarded') {
    return `  +${String(payload.points)} points to ${String(payload.customerId)}`;
  }
  if (eventType === 'loyalty.points-revoked') {
    return `  -${String(payload.points)} points from ${String(payload.customerId)} (${String(payload.reason)})`;
  }
  if (eventType !== 'order.parked-decision') return '';
  const steps = Array.isArray(payload.failedSteps) ? payload.failedSteps.join(', ') : '';
  const reason = typeof payload.reason === 'string' ? `: ${payload.reason}` : '';
  return `  ${String(payload.decision)} of ${steps} (round ${String(payload.round)}) by ${String(payload.operator)}${reason}`;
}

/** Adds `history` and `replay-events` to the `orders` program. */
export function registerHistoryCommands(program: Command): void {
  program
    .command('history')
    .description("an order's events from the event store and its state rebuilt from them")
    .argument('<orderId>')
    .option('--at <timestamp>', 'rebuild the state as it was at this instant (ISO or epoch ms)', instant)
    .option('--json', 'print JSON')
    .action(async (orderId: string, o: { at?: Date; json?: boolean }) => {
      await withStore(storeSettings(), async (store) => {
        const events = await store.history(orderId);
        const shown = o.at ? events.filter((e) => e.occurredAt.getTime() <= o.at!.getTime()) : events;
        const state = rebuildOrderState(orderId, events, o.at);
        if (o.json) {
          const list = shown.map(({ raw: _raw, ...e }) => ({ ...e, occurredAt: e.occurredAt.toISOString() }));
          console.log(JSON.stringify({ orderId, at: o.at?.toISOString() ?? null, events: list, state }, null, 2));
          return;
        }
        if (!events.length) {
          console.log(`no events for ${orderId}`);
          process.exitCode = 3;
          return;
        }
        for (const e of shown) {
          const what = describeEvent(e.eventType, e.payload);
          console.log(`${e.occurredAt.toISOString()}  ${e.eventType} v${e.eventVersion}  ${e.eventId}${what}`);
        }
        console.log(`\nstate${o.at ? ` at ${o.at.toISOString()}` : ''}:`);
        console.log(JSON.stringify(state, null, 2));
      });
    });

  program
    .command('replay-events')
    .description('send stored events (by type and time range) to a topic, for a new consumer')
    .requiredOption('--to-topic <topic>', 'destination topic')
    .option('--type <types>', 'comma-separated event types, e.g. order.confirmed,order.failed')
    .option('--since <timestamp>', 'occurred at or after (ISO or epoch ms)', instant)
    .option('--until <timestamp>', 'occurred at or before (ISO or epoch ms)', instant)
    .option('--order <orderId>', 'only this order')
    .action(async (o: { toTopic: string; type?: string; since?: Date; until?: Date; order?: string }) => {
      const settings = storeSettings();
      const kafka = createKafka(settings.kafka, 'orders-cli', { logLevel: logLevel.ERROR });
      const producer = createProducer(kafka);
      await producer.connect();
      try {
        const sent = await withStore(settings, (store) =>
          replayToTopic(
            store,
            producer,
            { eventTypes: o.type?.split(','), from: o.since, to: o.until, orderId: o.order },
            o.toTopic,
          ),
        );
        console.log(JSON.stringify({ topic: o.toTopic, sent }));
      } finally {
        await producer.disconnect();
      }
    });
}
