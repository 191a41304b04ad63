/**
 * A record that breaks the handler (not bad data: an unforeseen case) stays visible and operable.
 * Real ingress, Kafka, PostgreSQL and Temporal: an order whose id is too long for a Temporal workflow id
 * passes validation, but every start is refused, so its partition stays paused. The gauge shows where
 * and how often; `orders blocked dead-letter` moves that one record to the dead-letter topic (reason
 * HandlerError) and the partition continues. A redelivery after the dead-letter write (a crash before
 * the offset commit) writes no second dead letter, and copies left by a crash between the write and
 * its ledger note are replayed once.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import pino from 'pino';

import { listDeadLetters, replayDeadLetters } from '../../src/cli/dead-letters';
import { placedEvent } from '../../src/cli/order-events';
import { deadLetterTopic } from '../../src/events/topics';
import type { Ingress } from '../../src/ingress/app';
import { startIngress } from '../../src/ingress/app';
import { createMetrics } from '../../src/observability/metrics';
import type { IngressScope } from '../support/ingress-harness';
import { db, newScope, produce, readAll, scopeConfig, startStubSagaWorker, stubRuns } from '../support/ingress-harness';
import { kafkaClient } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

const ROOT = path.join(__dirname, '..', '..');

async function blockedGauge(metrics: ReturnType<typeof createMetrics>) {
  return (await metrics.blockedRecord.get()).values.map((v) => ({ ...v.labels, attempts: v.value }));
}

async function orders(...args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli/orders.ts', ...args],
      {
        cwd: ROOT,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('a record that breaks the ingress handler', () => {
  afterAll(() => db.end());

  async function run(
    scope: IngressScope,
    metrics: ReturnType<typeof createMetrics>,
    inFlight: number,
  ): Promise<Ingress> {
    const cfg = scopeConfig(scope, {
      KTS_INGRESS_BACKOFF_INITIAL_MS: '100',
      KTS_INGRESS_BACKOFF_MAX_MS: '500',
      KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION: String(inFlight),
    });
    return startIngress(cfg, pino({ level: 'silent' }), metrics);
  }

  // One after another, the blocked record holds back the order behind it; with several in flight, an
  // order behind it (another key) starts meanwhile, but the committed offset stays below the blocked one.
  it.each([1, 4])(
    'is shown with its position and attempts, dead-lettered on an operator command, and its partition continues (%i in flight)',
    async (inFlight) => {
      const scope = await newScope('it_handler_error', 1);
      const worker = await startStubSagaWorker(scope);
      const metrics = createMetrics('ingress-test');
      const before = placedEvent({ version: 2 });
      // Valid by the schema and the rules, but Temporal refuses a workflow id this long: every attempt fails.
      const broken = { ...placedEvent({ version: 2 }), orderId: `ord-${'x'.repeat(1_200)}` };
      const after = placedEvent({ version: 2 });
      let ingress = await run(scope, metrics, inFlight);
      try {
        await produce(scope.placed, [{ event: before }, { event: broken }, { event: after }]);
        const blocked = await waitUntil(
          'the blocked record to show in the gauge with a few attempts',
          () => blockedGauge(metrics),
          (g) => (g[0]?.attempts ?? 0) >= 3,
        );
        expect(blocked).toEqual([
          { topic: scope.placed, partition: '0', offset: '1', attempts: expect.any(Number) as number },
        ]);
        const beside = inFlight === 1 ? [before] : [before, after];
        const first = await waitUntil(
          inFlight === 1 ? 'the order before it to start' : 'the orders before and after it to start',
          () => stubRuns(scope),
          (r) => r.length >= beside.length,
        );
        expect(first.map((r) => r.orderId).sort()).toEqual(beside.map((e) => e.orderId).sort());
        expect(await committedOffset(scope)).toBeLessThanOrEqual(1);

        const deadLetterCommand = (...extra: string[]) =>
          orders('blocked', 'dead-letter', '--topic', scope.placed, '--partition', '0', '--offset', '1', ...extra);
        const refused = await deadLetterCommand('--operator', 'ops');
        expect(refused.code).toBe(1);
        expect(refused.stderr.trim()).toBe('a reason is required to dead-letter a blocked record');

        const released = await deadLetterCommand(
          '--operator',
          'ops',
          '--reason',
          'order id too long for a workflow id (bug #123)',
        );
        expect(released.code).toBe(0);
        expect(released.stdout).toContain(`${scope.placed}/0@1 dead-lettered at`);
        const started = await waitUntil(
          'the next order to start',
          () => stubRuns(scope),
          (r) => r.length === 2,
        );
        expect(started.map((r) => r.orderId).sort()).toEqual([before.orderId, after.orderId].sort());
        expect(await blockedGauge(metrics)).toEqual([]);
        const letters = await listDeadLetters(kafkaClient(), scope.placed);
        expect(letters).toEqual([
          expect.objectContaining({
            reason: 'HandlerError',
            errorType: 'Ingress',
            originalPartition: 0,
            originalOffset: '1',
            errorMessage: expect.stringMatching(
              /^released by ops \(order id too long.*\); last handler error: /,
            ) as string,
          }),
        ]);
        expect(ingress.consumer.stats.handled.DEAD_LETTERED).toBe(1);

        // A crash after the dead-letter write and its ledger note, before the offset commit: the record
        // comes again and is skipped without a second dead letter.
        await ingress.stop();
        await rewindGroup(scope, 1);
        ingress = await run(scope, metrics, inFlight);
        await waitUntil(
          'the ingress to pass the record again',
          () => Promise.resolve(ingress.consumer.stats.handled.DEAD_LETTERED),
          (n) => n === 1,
        );
        expect(await readAll(deadLetterTopic(scope.placed))).toHaveLength(1);

        // A crash between the dead-letter write and its ledger note: a second copy is written, and the
        // dead letters still list and replay that record once.
        await ingress.stop();
        await db.query(`UPDATE ingress.handler_error_releases SET dead_lettered_at = NULL WHERE source_topic = $1`, [
          scope.placed,
        ]);
        await rewindGroup(scope, 1);
        ingress = await run(scope, metrics, inFlight);
        await waitUntil(
          'a second copy on the dead-letter topic',
          () => readAll(deadLetterTopic(scope.placed)),
          (r) => r.length === 2,
        );
        expect(await listDeadLetters(kafkaClient(), scope.placed)).toHaveLength(1);
        const replayed = await replayDeadLetters(kafkaClient(), scope.placed, { reason: 'HandlerError', dryRun: true });
        expect(replayed.map((l) => l.originalOffset)).toEqual(['1']);
      } finally {
        await ingress.stop();
        await worker.stop();
      }
    },
  );
});

/** The scope's committed offset on partition 0 (-1 when none): where a restart would resume. */
async function committedOffset(scope: IngressScope): Promise<number> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const [topic] = await admin.fetchOffsets({ groupId: scope.groupId, topics: [scope.placed] });
    return Number(topic?.partitions.find((p) => p.partition === 0)?.offset ?? -1);
  } finally {
    await admin.disconnect();
  }
}

/** Moves the scope's consumer group back to `offset` on partition 0, as an uncommitted record would leave it. */
async function rewindGroup(scope: IngressScope, offset: number): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await admin.setOffsets({
      groupId: scope.groupId,
      topic: scope.placed,
      partitions: [{ partition: 0, offset: String(offset) }],
    });
  } finally {
    await admin.disconnect();
  }
}
