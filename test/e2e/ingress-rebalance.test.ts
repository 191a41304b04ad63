import type { Client } from '@temporalio/client';

import { EventCodec } from '../../src/events/codec';
import { deadLetterTopic } from '../../src/events/topics';
import { placeOrders } from '../../src/cli/place-orders';
import { RegistryClient } from '../../src/kafka/registry-client';
import {
  db,
  ledgerOutcomes,
  newScope,
  readAll,
  startStubSagaWorker,
  stubRuns,
  temporalClient,
  temporalRuns,
  waitFor,
} from '../support/ingress-harness';
import type { IngressProcess } from '../support/ingress-process';
import { killHard, spawnIngress, stopGracefully } from '../support/ingress-process';
import { PrivateTemporal } from '../support/private-temporal';
import { endpoints, kafkaClient } from '../support/stack';

jest.setTimeout(900_000);

const ORDERS = 3000;
const PARTITIONS = 6;

// A Temporal server of this test's own: the shared one also serves whatever other suites run at the
// same time, and a start there can take most of a second under that load, which would make this
// test's duration depend on its neighbours. Counts still come from Temporal (this server) and PG.
const server = PrivateTemporal.create();
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

describe('ingress consumer group under rebalances', () => {
  it('loses no order and starts no duplicate saga while members are killed, restarted, added and removed', async () => {
    const scope = await newScope('e2e_rebalance', PARTITIONS);
    // The broker's minimum, so a killed member's partitions move on after seconds rather than 30 s.
    const { port, uiPort, address } = await server;
    const env = {
      KTS_INGRESS_SESSION_TIMEOUT_MS: '6000',
      KTS_INGRESS_PARTITION_CONCURRENCY: '6',
      KTS_TEMPORAL_PORT: String(port),
      KTS_TEMPORAL_UI_PORT: String(uiPort),
    };
    const worker = await startStubSagaWorker(scope, address);
    const members = new Map<string, IngressProcess>();
    let serial = 0;
    const add = () => {
      const name = `m${(serial += 1)}`;
      members.set(name, spawnIngress(scope, name, env));
    };
    // Chaos picks only members that are up: a signal during module loading proves nothing.
    const pick = () => {
      const up = [...members.values()].filter((m) => m.isReady());
      return up[Math.floor(Math.random() * up.length)]?.name;
    };
    const chaosLog: string[] = [];
    try {
      for (let i = 0; i < 3; i += 1) add();
      await Promise.all([...members.values()].map((m) => m.ready));
      // 3000 orders at 150/s (about 20 s), a tenth of them sent twice (same eventId).
      const load = placeOrders(
        kafkaClient('rebalance-load'),
        new EventCodec(new RegistryClient(endpoints.registryUrl)),
        {
          count: ORDERS,
          rate: 150,
          version: 'mixed',
          duplicates: 0.1,
          bad: 0,
          cancels: 0,
          placedTopic: scope.placed,
          cancelledTopic: scope.cancelled,
          maxPayloadBytes: 256 * 1024,
        },
      );
      // Ten membership changes, 8 s apart (each rebalance stops the group for seconds), while the
      // load runs and the group works through its backlog: kill -9 + restart, add, remove gracefully.
      const actions = ['kill', 'add', 'kill', 'remove', 'kill', 'add', 'remove', 'kill', 'add', 'kill'] as const;
      for (let i = 0; i < actions.length; i += 1) {
        await new Promise((r) => setTimeout(r, 8000));
        const action = actions[i % actions.length]!;
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
      }
      const report = await load;
      expect(report.orderIds).toHaveLength(ORDERS);
      // No member died on its own: only the ones this test killed.
      expect([...members.values()].filter((m) => m.child.exitCode !== null).map((m) => m.name)).toEqual([]);
      while (members.size < 3) add();

      await waitFor(
        `${ORDERS} sagas charged`,
        () => stubRuns(scope),
        (r) => r.length >= ORDERS,
        600_000,
      );
      // Let redelivered records (uncommitted when a member died) drain before counting.
      await waitFor(
        'every placed event handled',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) + (o.ALREADY_STARTED ?? 0) === ORDERS,
        600_000,
      );
      const runs = await stubRuns(scope);
      expect(new Set(runs.map((r) => r.orderId))).toEqual(new Set(report.orderIds));
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
      console.log(`rebalance chaos: ${chaosLog.join('; ')}`);
    } finally {
      await Promise.all([...members.values()].map((m) => stopGracefully(m)));
      await worker.stop();
    }
  });
});
