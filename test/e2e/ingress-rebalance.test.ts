import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { Client } from '@temporalio/client';

import { placeOrders } from '../../src/cli/place-orders';
import { EventCodec } from '../../src/events/codec';
import { deadLetterTopic } from '../../src/events/topics';
import { RegistryClient } from '../../src/kafka/registry-client';
import { fetchConsumerLag } from '../../src/observability/consumer-lag';
import type { IngressScope } from '../support/ingress-harness';
import {
  bundleStubWorkflows,
  db,
  ledgerOutcomes,
  newScope,
  readAll,
  startStubSagaWorker,
  stubRuns,
  temporalClient,
  temporalRuns,
} from '../support/ingress-harness';
import type { IngressProcess } from '../support/ingress-process';
import { INGRESS_LOG_DIR, killHard, spawnIngress, stopGracefully } from '../support/ingress-process';
import { PrivateTemporal } from '../support/private-temporal';
import { endpoints, kafkaClient } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(900_000);

const PARTITIONS = 6;
/** Ten membership changes: kill -9 + restart, add, remove gracefully. */
const ACTIONS = ['kill', 'add', 'kill', 'remove', 'kill', 'add', 'remove', 'kill', 'add', 'kill'] as const;
/**
 * Orders produced for each change. Most come first, and the change waits until the group works on
 * them (see below); the last few are produced right before the change, so every rebalance hits a
 * group with records in flight and uncommitted, however fast or slow the machine handles the rest:
 * the load is paced by the chaos, not by the clock.
 */
const ORDERS_PER_CHANGE = 50;
/** Of those, the ones produced just before the change (offsets are committed about once a second). */
const ORDERS_AT_CHANGE = 10;
const ORDERS = ACTIONS.length * ORDERS_PER_CHANGE;
/** Records the group must handle after a chunk is produced before the next change: it works again. */
const PROGRESS_BEFORE_CHANGE = 10;

// A Temporal server of this test's own: the shared one also serves whatever other suites run at the
// same time, and a start there can take most of a second under that load, which would make this
// test's duration depend on its neighbours. Counts still come from Temporal (this server) and PG.
const server = PrivateTemporal.create();
// Bundled while the server starts: on a busy machine either takes many seconds.
const bundle = bundleStubWorkflows();
let temporal: { client: Client; close: () => Promise<void> };
beforeAll(async () => {
  await (await server).start();
  temporal = await temporalClient((await server).address);
});
afterAll(async () => {
  await temporal.close();
  await (await server).stop();
  await db.end();
});

/** Records of the scope's order.placed topic not yet committed by its ingress group. */
async function groupLag(scope: IngressScope): Promise<number> {
  const admin = kafkaClient('rebalance-lag').admin();
  await admin.connect();
  try {
    const lag = await fetchConsumerLag(admin, scope.groupId, [scope.placed]);
    return lag.reduce((n, p) => n + p.lag, 0);
  } finally {
    await admin.disconnect();
  }
}

/** Ledger rows of the scope: every handled record but the ones dropped as a duplicate eventId. */
async function handledCount(scope: IngressScope): Promise<number> {
  return Object.values(await ledgerOutcomes(scope)).reduce((a, b) => a + b, 0);
}

/**
 * Records that members handled more than once, from their 'record handled' log lines (topic,
 * partition, offset): the uncommitted work a killed member left, which the group handled again.
 */
function redeliveredRecords(scope: IngressScope, names: readonly string[]): number {
  const seen = new Map<string, number>();
  for (const name of names) {
    const file = path.join(INGRESS_LOG_DIR, `${scope.prefix}-${name}.log`);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes('"msg":"record handled"')) continue;
      const r = JSON.parse(line) as { topic: string; partition: number; offset: string };
      const key = `${r.topic}/${r.partition}/${r.offset}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }
  return [...seen.values()].filter((n) => n > 1).length;
}

describe('ingress consumer group under rebalances', () => {
  it('loses no order and starts no duplicate saga while members are killed, restarted, added and removed', async () => {
    const began = Date.now();
    const phases: string[] = [];
    const phase = (what: string) => phases.push(`${what} ${((Date.now() - began) / 1000).toFixed(1)} s`);
    const scope = await newScope('e2e_rebalance', PARTITIONS);
    const { port, uiPort, address } = await server;
    const env = {
      // The broker's minimum, so a killed member's partitions move on after seconds rather than 30 s.
      KTS_INGRESS_SESSION_TIMEOUT_MS: '6000',
      KTS_INGRESS_PARTITION_CONCURRENCY: '6',
      KTS_TEMPORAL_PORT: String(port),
      KTS_TEMPORAL_UI_PORT: String(uiPort),
    };
    // Starting three Node processes is slow on a busy machine: the saga worker starts meanwhile.
    const workerStarting = bundle.then((b) => startStubSagaWorker(scope, address, b));
    const members = new Map<string, IngressProcess>();
    const everyMember: string[] = [];
    let serial = 0;
    const add = () => {
      const name = `m${(serial += 1)}`;
      members.set(name, spawnIngress(scope, name, env));
      everyMember.push(name);
    };
    // Chaos picks only members that are up: a signal during module loading proves nothing.
    const pick = () => {
      const up = [...members.values()].filter((m) => m.isReady());
      return up[Math.floor(Math.random() * up.length)]?.name;
    };
    const chaosLog: string[] = [];
    const lagAtChange: number[] = [];
    const orderIds: string[] = [];
    const load = kafkaClient('rebalance-load');
    const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
    const place = async (count: number) => {
      const report = await placeOrders(load, codec, {
        count,
        rate: 0,
        version: 'mixed',
        duplicates: 0.1,
        bad: 0,
        cancels: 0,
        placedTopic: scope.placed,
        cancelledTopic: scope.cancelled,
        maxPayloadBytes: 256 * 1024,
      });
      orderIds.push(...report.orderIds);
    };
    try {
      for (let i = 0; i < 3; i += 1) add();
      await Promise.all([...members.values()].map((m) => m.ready));
      await workerStarting;
      phase('3 members and the saga worker up');
      for (const action of ACTIONS) {
        // A chunk of orders, a tenth of them sent twice (same eventId), then the change once the group
        // handles records again (the previous change's rebalance is over) with records still to do.
        const before = await handledCount(scope);
        await place(ORDERS_PER_CHANGE - ORDERS_AT_CHANGE);
        await waitUntil(
          `the group handling records again before "${action}"`,
          () => handledCount(scope),
          (n) => n >= before + PROGRESS_BEFORE_CHANGE,
          { timeoutMs: 120_000 },
        );
        // A fast group may have finished the chunk by now; these are still on their way when it changes.
        await place(ORDERS_AT_CHANGE);
        lagAtChange.push(await groupLag(scope));
        const name = pick();
        if (action === 'kill' && name) {
          await killHard(members.get(name)!);
          members.delete(name);
          add();
          chaosLog.push(`kill -9 ${name}, restart`);
        } else if (action === 'add') {
          add();
          chaosLog.push('add member');
        } else if (action === 'remove' && name && members.size > 1) {
          const code = await stopGracefully(members.get(name)!);
          members.delete(name);
          chaosLog.push(`remove ${name} (exit ${code})`);
          expect(code).toBe(0);
        }
        phase(action);
      }
      expect(orderIds).toHaveLength(ORDERS);
      expect(new Set(orderIds).size).toBe(ORDERS);
      // Every change happened with records not yet committed by the group: rebalances under load.
      expect(lagAtChange.filter((lag) => lag === 0)).toEqual([]);
      // No member died on its own: only the ones this test killed.
      expect([...members.values()].filter((m) => m.child.exitCode !== null).map((m) => m.name)).toEqual([]);
      while (members.size < 3) add();

      await waitUntil(
        `${ORDERS} sagas charged`,
        () => stubRuns(scope),
        (r) => r.length >= ORDERS,
        { timeoutMs: 600_000 },
      );
      phase('sagas charged');
      // Let redelivered records (uncommitted when a member died) drain before counting.
      await waitUntil(
        'every placed event handled',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) + (o.ALREADY_STARTED ?? 0) === ORDERS,
        { timeoutMs: 600_000 },
      );
      const runs = await stubRuns(scope);
      expect(new Set(runs.map((r) => r.orderId))).toEqual(new Set(orderIds));
      expect(runs.filter((r) => r.runs !== 1)).toEqual([]);
      const sagas = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM ingress.order_sagas WHERE source_topic = $1',
        [scope.placed],
      );
      expect(Number(sagas.rows[0]?.n)).toBe(ORDERS);
      const wf = await temporalRuns(temporal.client, scope);
      expect(wf.size).toBe(ORDERS);
      expect([...wf.entries()].filter(([, n]) => n !== 1)).toEqual([]);
      expect(await readAll(deadLetterTopic(scope.placed))).toEqual([]);
      phase('verified');
      // The kills hit handled but uncommitted records, which the group then handled again: the
      // dedupe above was exercised, not just the happy path.
      const redelivered = redeliveredRecords(scope, everyMember);
      console.log(
        `rebalance chaos: ${chaosLog.join('; ')}\nlag at each change: ${lagAtChange.join(', ')}; ` +
          `records handled twice: ${redelivered}\nphases: ${phases.join('; ')}`,
      );
      expect(redelivered).toBeGreaterThan(0);
    } finally {
      await Promise.all([...members.values()].map((m) => stopGracefully(m)));
      await workerStarting.then(
        (worker) => worker.stop(),
        () => undefined,
      );
    }
  });
});
