import { Client, Connection } from '@temporalio/client';

import { EventCodec } from '../../src/events/codec';
import { deadLetterTopic } from '../../src/events/topics';
import { placeOrders } from '../../src/cli/place-orders';
import { RegistryClient } from '../../src/kafka/registry-client';
import {
  db,
  ledgerOutcomes,
  newScope,
  readAll,
  startScopedIngress,
  startStubSagaWorker,
  stubRuns,
  temporalRuns,
  waitFor,
} from '../support/ingress-harness';
import type { IngressScope } from '../support/ingress-harness';
import { PrivateTemporal } from '../support/private-temporal';
import { endpoints, kafkaClient } from '../support/stack';

jest.setTimeout(600_000);

const ORDERS = 600;

afterAll(async () => {
  await db.end();
});

/** Records not yet committed by the scope's ingress group, summed over partitions. */
async function groupLag(scope: IngressScope): Promise<number> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const high = await admin.fetchTopicOffsets(scope.placed);
    const [committed] = await admin.fetchOffsets({ groupId: scope.groupId, topics: [scope.placed] });
    return high.reduce((lag, h) => {
      const c = committed?.partitions.find((p) => p.partition === h.partition)?.offset ?? '-1';
      return lag + Number(h.high) - Math.max(0, Number(c));
    }, 0);
  } finally {
    await admin.disconnect();
  }
}

describe('ingress while Temporal is down', () => {
  it('backs off with partitions paused for a 30 s outage: nothing lost, nothing dead-lettered, lag recovers', async () => {
    const temporal = await PrivateTemporal.create();
    await temporal.start();
    const scope = await newScope('e2e_temporal_down', 3);
    let worker = await startStubSagaWorker(scope, temporal.address);
    const ingress = await startScopedIngress(scope, {
      KTS_TEMPORAL_PORT: String(temporal.port),
      KTS_TEMPORAL_UI_PORT: String(temporal.uiPort),
      KTS_INGRESS_TEMPORAL_TIMEOUT_MS: '2000',
      KTS_INGRESS_BACKOFF_MAX_MS: '3000',
    });
    try {
      // 600 orders at 40/s: about 15 s of load, the outage starting a few seconds in.
      const load = placeOrders(kafkaClient('outage-load'), new EventCodec(new RegistryClient(endpoints.registryUrl)), {
        count: ORDERS,
        rate: 40,
        version: 'mixed',
        duplicates: 0,
        bad: 0,
        cancels: 0,
        placedTopic: scope.placed,
        cancelledTopic: scope.cancelled,
        maxPayloadBytes: 256 * 1024,
      });
      await waitFor(
        'some sagas started before the outage',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) >= 50,
      );

      await worker.stop();
      await temporal.stop();
      const handledAtStop = await ledgerOutcomes(scope);
      await new Promise((r) => setTimeout(r, 15_000));
      // Mid-outage: the ingress is retrying, not skipping or dead-lettering, and lag builds up.
      const failuresMidOutage = ingress.consumer.stats.transientFailures;
      const lagMidOutage = await groupLag(scope);
      const handledMidOutage = await ledgerOutcomes(scope);
      await new Promise((r) => setTimeout(r, 15_000));
      expect(ingress.consumer.stats.handled.DEAD_LETTERED).toBe(0);

      await temporal.start();
      worker = await startStubSagaWorker(scope, temporal.address);
      const report = await load;
      await waitFor(
        'every order started',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) + (o.ALREADY_STARTED ?? 0) === ORDERS,
      );
      await waitFor(
        'lag back to zero',
        () => groupLag(scope),
        (lag) => lag === 0,
      );
      await waitFor(
        'every saga charged',
        () => stubRuns(scope),
        (r) => r.length === ORDERS,
      );

      expect(failuresMidOutage).toBeGreaterThan(0);
      expect(lagMidOutage).toBeGreaterThan(0);
      // At most the records in flight when Temporal died completed during the outage.
      const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
      expect(sum(handledMidOutage) - sum(handledAtStop)).toBeLessThanOrEqual(3);
      const runs = await stubRuns(scope);
      expect(new Set(runs.map((r) => r.orderId))).toEqual(new Set(report.orderIds));
      expect(runs.filter((r) => r.runs !== 1)).toEqual([]);
      const connection = await Connection.connect({ address: temporal.address });
      const wf = await temporalRuns(new Client({ connection }), scope);
      await connection.close();
      expect(wf.size).toBe(ORDERS);
      expect(await readAll(deadLetterTopic(scope.placed))).toEqual([]);
    } finally {
      await ingress.stop();
      await worker.stop();
      await temporal.stop();
    }
  });
});
