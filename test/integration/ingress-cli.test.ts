import { spawnSync } from 'node:child_process';
import path from 'node:path';

import type { Client } from '@temporalio/client';

import { placedEvent } from '../../src/cli/order-events';
import type { DeadLetterView } from '../../src/ingress/dead-letter';
import type { IngressScope } from '../support/ingress-harness';
import {
  db,
  ledgerOutcomes,
  newScope,
  produce,
  startScopedIngress,
  startStubSagaWorker,
  stubRuns,
  temporalClient,
  temporalRuns,
  terminateScopeSagas,
} from '../support/ingress-harness';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

const root = path.join(__dirname, '..', '..');
/** Runs the orders CLI as a user would; fails the test with its stderr if it exits non-zero. */
function orders(...args: string[]): string {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/orders.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`orders ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res.stdout;
}

let temporal: { client: Client; close: () => Promise<void> };
beforeAll(async () => {
  temporal = await temporalClient();
});
afterAll(async () => {
  await terminateScopeSagas();
  await temporal.close();
  await db.end();
});

const topics = (s: IngressScope) => ['--topic', s.placed, '--cancel-topic', s.cancelled];

describe('orders CLI', () => {
  it('places orders with duplicates and bad records; the ingress starts one saga per order and dead-letters the rest', async () => {
    const scope = await newScope('it_cli_place', 2);
    const out = orders(
      'place',
      '--count',
      '40',
      '--event-version',
      'mixed',
      '--duplicates',
      '0.5',
      '--bad',
      '0.3',
      '--no-progress',
      ...topics(scope),
    );
    const report = JSON.parse(out.trim().split('\n').pop()!) as {
      orders: number;
      duplicatesSent: number;
      badSent: Record<string, number>;
    };
    const badTotal = Object.values(report.badSent).reduce((a, b) => a + b, 0);
    expect(report.orders).toBe(40);
    expect(report.duplicatesSent).toBeGreaterThan(0);
    expect(badTotal).toBeGreaterThan(0);

    const worker = await startStubSagaWorker(scope);
    const ingress = await startScopedIngress(scope);
    try {
      await waitUntil(
        '40 sagas',
        () => ledgerOutcomes(scope),
        (o) => o.STARTED === 40,
      );
      await waitUntil(
        'every bad record dead-lettered',
        () => Promise.resolve(ingress.consumer.stats.handled.DEAD_LETTERED),
        (n) => n === badTotal,
      );
    } finally {
      await ingress.stop();
      await worker.stop();
    }
    const listed = orders('dlq', 'list', '--json', '--topic', scope.placed)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DeadLetterView);
    expect(listed).toHaveLength(badTotal);
    expect(listed.every((l) => l.originalTopic === scope.placed && l.reason !== '')).toBe(true);
    expect((await temporalRuns(temporal.client, scope)).size).toBe(40);
  });

  it('replays dead letters through the same dedupe: a fixed limit lets them start, a second replay starts nothing', async () => {
    const scope = await newScope('it_cli_replay', 1);
    const events = Array.from({ length: 3 }, () => placedEvent({ version: 2 }));
    const worker = await startStubSagaWorker(scope);
    try {
      // A limit far too small (a bad deploy): every valid order is dead-lettered as oversized.
      const strict = await startScopedIngress(scope, { KTS_INGRESS_MAX_PAYLOAD_BYTES: '64' });
      await produce(
        scope.placed,
        events.map((event) => ({ event })),
      );
      await waitUntil(
        '3 dead letters',
        () => Promise.resolve(strict.consumer.stats.handled.DEAD_LETTERED),
        (n) => n === 3,
      );
      await strict.stop();
      expect(await stubRuns(scope)).toEqual([]);

      const fixed = await startScopedIngress(scope);
      try {
        expect(orders('dlq', 'replay', '--reason', 'PayloadTooLarge', ...topics(scope).slice(0, 2))).toContain(
          'replayed 3',
        );
        await waitUntil(
          '3 sagas',
          () => stubRuns(scope),
          (r) => r.length === 3,
        );
        orders('dlq', 'replay', ...topics(scope).slice(0, 2));
        await waitUntil(
          'second replay handled',
          () => Promise.resolve(fixed.consumer.stats.handled.DUPLICATE_EVENT),
          (n) => n === 3,
        );
      } finally {
        await fixed.stop();
      }
    } finally {
      await worker.stop();
    }
    const runs = await stubRuns(scope);
    expect(runs.map((r) => r.runs)).toEqual([1, 1, 1]);
    expect(new Set(runs.map((r) => r.orderId))).toEqual(new Set(events.map((e) => e.orderId)));
    expect(await ledgerOutcomes(scope)).toEqual({ STARTED: 3 });
  });
});
