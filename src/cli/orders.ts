/**
 * `npm run orders -- <command>`: place orders, list and replay dead letters, order history (history.ts).
 *
 *   orders place --count 1000 --rate 200 --event-version mixed --duplicates 0.1 --bad 0.05
 *   orders dlq list [--topic order.placed] [--json]
 *   orders dlq replay [--topic order.placed] [--position 0:12 ...] [--reason InvalidContent] [--dry-run]
 *   orders parked list | show | retry | resolve | abandon   (parked-commands.ts)
 *   orders blocked dead-letter --topic t --partition p --offset o --reason r   (blocked-commands.ts)
 */
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { logLevel } from 'kafkajs';

import { createKafka, createRegistryClient } from '../config/clients';
import { loadSettings } from '../config/settings';
import { EventCodec } from '../events/codec';
import { initTracing } from '../observability/tracing';
import { registerBlockedCommands } from './blocked-commands';
import { listDeadLetters, replayDeadLetters } from './dead-letters';
import { registerHistoryCommands } from './history';
import type { BadRecordKind } from './order-events';
import { BAD_RECORD_KINDS } from './order-events';
import { registerParkedCommands } from './parked-commands';
import { placeOrders } from './place-orders';

// Parsed once: a tool reads only the shared sections (brokers, registry, scope), never a role's credentials.
const settings = loadSettings([], process.env, { refuseForeignCredentials: false });
const names = settings.common.names;
const kafka = () => createKafka(settings.kafka, 'orders-cli', { logLevel: logLevel.ERROR });

function int(min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return n;
  };
}
function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be between 0 and 1');
  return n;
}

const program = new Command('orders').description('Order events for the kafka-temporal-saga ingress');

program
  .command('place')
  .description('produce order.placed events (Avro, key = orderId)')
  .option('--count <n>', 'orders to place', int(1), 10)
  .option('--rate <n>', 'orders per second (0 = as fast as possible)', int(0), 0)
  .addOption(new Option('--event-version <v>', 'order.placed version').choices(['1', '2', 'mixed']).default('2'))
  .option('--duplicates <f>', 'fraction of orders sent twice (same eventId)', fraction, 0)
  .option('--bad <f>', 'fraction of orders followed by a bad record', fraction, 0)
  .option('--bad-kinds <kinds>', `comma-separated subset of: ${BAD_RECORD_KINDS.join(', ')}`)
  .option('--cancels <f>', 'fraction of orders followed by an order.cancelled', fraction, 0)
  .option('--topic <t>', 'order.placed topic', names.topics.orderPlaced)
  .option('--cancel-topic <t>', 'order.cancelled topic', names.topics.orderCancelled)
  .option('--max-payload-bytes <n>', "the ingress's payload limit, for oversized records", int(64), 256 * 1024)
  .option('--no-progress', 'no progress bar')
  .action(async (o: Record<string, unknown>) => {
    const kinds = typeof o.badKinds === 'string' ? (o.badKinds.split(',') as BadRecordKind[]) : undefined;
    const unknownKind = kinds?.find((k) => !BAD_RECORD_KINDS.includes(k));
    if (unknownKind) throw new InvalidArgumentError(`unknown bad record kind ${unknownKind}`);
    const count = o.count as number;
    const bar = o.progress
      ? new SingleBar({ format: 'orders {bar} {value}/{total} {eta_formatted}' }, Presets.shades_classic)
      : undefined;
    bar?.start(count, 0);
    // Each order's producer span starts its trace; the traceparent header carries it to the ingress.
    const tracing = initTracing('kts-orders-cli', undefined, settings.common.otlpTracesEndpoint);
    const report = await placeOrders(kafka(), new EventCodec(createRegistryClient(settings.registry)), {
      count,
      rate: o.rate as number,
      version: o.eventVersion as '1' | '2' | 'mixed',
      duplicates: o.duplicates as number,
      bad: o.bad as number,
      badKinds: kinds,
      cancels: o.cancels as number,
      placedTopic: o.topic as string,
      cancelledTopic: o.cancelTopic as string,
      maxPayloadBytes: o.maxPayloadBytes as number,
      onProgress: (n) => bar?.update(n),
    });
    bar?.stop();
    // Flushes the batched spans to the OTLP endpoint, when one is configured.
    await tracing.shutdown();
    const { orderIds, ...summary } = report;
    console.log(JSON.stringify({ orders: orderIds.length, ...summary }));
  });

const dlq = program.command('dlq').description('dead letters of an ingress topic');

dlq
  .command('list')
  .option('--topic <t>', 'source topic (its dead letters are on <t>.dlq)', names.topics.orderPlaced)
  .option('--json', 'one JSON object per line')
  .action(async (o: { topic: string; json?: boolean }) => {
    const letters = await listDeadLetters(kafka(), o.topic);
    if (o.json) {
      for (const l of letters) console.log(JSON.stringify(l));
      return;
    }
    console.log(`${letters.length} dead letter(s) on ${o.topic}.dlq`);
    for (const l of letters) {
      console.log(
        `${l.partition}:${l.offset}  ${l.reason.padEnd(20)} from ${l.originalTopic}/${l.originalPartition}@${l.originalOffset}` +
          `  key=${l.key ?? '-'}  ${l.errorMessage}`,
      );
    }
  });

dlq
  .command('replay')
  .description('put dead letters back on their original topic (the ingress dedupes them as usual)')
  .option('--topic <t>', 'source topic', names.topics.orderPlaced)
  .option('--position <p:o...>', 'only these dead letters (partition:offset)')
  .option('--reason <r>', 'only dead letters with this reason')
  .option('--dry-run', 'list what would be replayed')
  .action(async (o: { topic: string; position?: string[]; reason?: string; dryRun?: boolean }) => {
    const replayed = await replayDeadLetters(kafka(), o.topic, {
      positions: o.position,
      reason: o.reason,
      dryRun: o.dryRun,
    });
    console.log(`${o.dryRun ? 'would replay' : 'replayed'} ${replayed.length} dead letter(s)`);
  });

registerHistoryCommands(program);
registerParkedCommands(program);
registerBlockedCommands(program);

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
