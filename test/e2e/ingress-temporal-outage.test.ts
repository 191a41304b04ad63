import { Client, Connection } from '@temporalio/client';

import { placeOrders } from '../../src/cli/place-orders';
import { EventCodec } from '../../src/events/codec';
import { deadLetterTopic } from '../../src/events/topics';
import { RegistryClient } from '../../src/kafka/registry-client';
import type { IngressScope } from '../support/ingress-harness';
import {
  bundleStubWorkflows,
  db,
  ledgerOutcomes,
  newScope,
  readAll,
  startScopedIngress,
  startStubSagaWorker,
  stubRuns,
  temporalRuns,
} from '../support/ingress-harness';
import { PrivateTemporal } from '../support/private-temporal';
import { endpoints, kafkaClient } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(600_000);

const ORDERS = 300;
const PARTITIONS = 3;
// Settings of the ingress under test: one Temporal call gives up after 2 s, a partition's pause
// doubles from 250 ms (the default) up to 3 s.
const TEMPORAL_TIMEOUT_MS = 2000;
const BACKOFF_MAX_MS = 3000;
/**
 * Failed attempts per partition that the outage lasts at least: the pause after the 5th is drawn up to
 * its 3 s ceiling (250 ms doubled four times), so the outage spans the whole backoff ramp, for as long
 * as that takes on this machine rather than a fixed 30 s (which was longer than needed when quiet).
 */
const FAILURES_PER_PARTITION = 5;

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
  it('backs off with partitions paused through a Temporal outage: nothing lost, nothing dead-lettered, lag recovers', async () => {
    const began = Date.now();
    const phases: string[] = [];
    const phase = (what: string) => phases.push(`${what} ${((Date.now() - began) / 1000).toFixed(1)} s`);
    // Bundled once for both workers, while the server starts.
    const bundle = bundleStubWorkflows();
    const temporal = await PrivateTemporal.create();
    await temporal.start();
    const scope = await newScope('e2e_temporal_down', PARTITIONS);
    let worker = await startStubSagaWorker(scope, temporal.address, await bundle);
    const ingress = await startScopedIngress(scope, {
      KTS_TEMPORAL_PORT: String(temporal.port),
      KTS_TEMPORAL_UI_PORT: String(temporal.uiPort),
      KTS_INGRESS_TEMPORAL_TIMEOUT_MS: String(TEMPORAL_TIMEOUT_MS),
      KTS_INGRESS_BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
    });
    phase('set up');
    try {
      // 300 orders at 40/s: about 8 s of load, the outage starting a few seconds in.
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
      await waitUntil(
        'some sagas started before the outage',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) >= 50,
      );

      await worker.stop();
      await temporal.stop();
      phase('Temporal down');
      const outageBegan = Date.now();
      const handledAtStop = await ledgerOutcomes(scope);
      const failuresAtStop = ingress.consumer.stats.transientFailures;
      // The outage lasts until every partition could have failed and backed off to the ceiling: the
      // failures are counted over all partitions, which all hold records (the load goes on).
      await waitUntil(
        `${FAILURES_PER_PARTITION} failed attempts per partition`,
        () => Promise.resolve(ingress.consumer.stats.transientFailures - failuresAtStop),
        (n) => n >= FAILURES_PER_PARTITION * PARTITIONS,
        { timeoutMs: 300_000 },
      );
      // Late in the outage: the ingress is retrying, not skipping or dead-lettering, and lag builds up.
      const failuresInOutage = ingress.consumer.stats.transientFailures - failuresAtStop;
      const lagInOutage = await groupLag(scope);
      const handledInOutage = await ledgerOutcomes(scope);
      expect(ingress.consumer.stats.handled.DEAD_LETTERED).toBe(0);
      const outageSeconds = (Date.now() - outageBegan) / 1000;
      phase('outage over');

      await temporal.start();
      worker = await startStubSagaWorker(scope, temporal.address, await bundle);
      const report = await load;
      await waitUntil(
        'every order started',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) + (o.ALREADY_STARTED ?? 0) === ORDERS,
      );
      await waitUntil(
        'lag back to zero',
        () => groupLag(scope),
        (lag) => lag === 0,
      );
      await waitUntil(
        'every saga charged',
        () => stubRuns(scope),
        (r) => r.length === ORDERS,
      );

      phase('recovered');
      expect(failuresInOutage).toBeGreaterThanOrEqual(FAILURES_PER_PARTITION * PARTITIONS);
      expect(lagInOutage).toBeGreaterThan(0);
      // At most the records in flight when Temporal died completed during the outage.
      const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
      expect(sum(handledInOutage) - sum(handledAtStop)).toBeLessThanOrEqual(PARTITIONS);
      const runs = await stubRuns(scope);
      expect(new Set(runs.map((r) => r.orderId))).toEqual(new Set(report.orderIds));
      expect(runs.filter((r) => r.runs !== 1)).toEqual([]);
      const connection = await Connection.connect({ address: temporal.address });
      const wf = await temporalRuns(new Client({ connection }), scope);
      await connection.close();
      expect(wf.size).toBe(ORDERS);
      expect(await readAll(deadLetterTopic(scope.placed))).toEqual([]);
      phase('verified');
      console.log(
        `Temporal outage: ${outageSeconds.toFixed(1)} s, ${failuresInOutage} failed attempts, lag ${lagInOutage}\n` +
          `phases: ${phases.join('; ')}`,
      );
    } finally {
      await ingress.stop();
      await worker.stop();
      await temporal.stop();
    }
  });
});
