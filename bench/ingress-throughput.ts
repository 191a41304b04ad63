/**
 * Ingress throughput, in one run on one Temporal server, in alternating rounds:
 *  1. saga starts per second through the ingress (Kafka → decode → validate → ledger → start),
 *     records produced beforehand so only consumption is timed;
 *  2. the bare loop: the ingress's own start call (`TemporalSagaGateway.start`: same request, memo and
 *     Web UI metadata) from as many concurrent loops as the ingress has records in flight
 *     (partitions × records in flight per partition), with no Kafka and no ledger;
 *  3. Avro decode + zod validate + upcast records per second, in-process (registry lookups cached).
 * No worker polls the task queue: both paths measure starting, which is what the ingress does. Each
 * round runs both, in alternating order; the ratio is taken per round and reported as a median with
 * its range, with the CPU milliseconds each component spent per start.
 *
 * Usage: npx tsx bench/ingress-throughput.ts [orders=1000] [partitions=6] [inFlightPerPartition=4]
 *        [--rounds N (3)] [--shared-temporal]
 * `orders` is per round; inFlightPerPartition is KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION (every order
 * its own key). By default a private Temporal dev server (same CLI binary, SQLite file) is started, so
 * other work on the shared stack server cannot skew the comparison; --shared-temporal uses the stack's.
 */
import os from 'node:os';

import { Client, Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import { startRoles } from '../src/app/roles';
import { placedEvent } from '../src/cli/order-events';
import { loadSettings } from '../src/config/settings';
import { loadStackConfig, stackEndpoints } from '../src/config/stack-config';
import { EventCodec } from '../src/events/codec';
import { upcastOrderPlaced } from '../src/events/rules';
import { TOPICS } from '../src/events/topics';
import { TemporalSagaGateway } from '../src/ingress/saga-gateway';
import { RegistryClient } from '../src/kafka/registry-client';
import { createLogger } from '../src/observability/logger';
import { createMetrics } from '../src/observability/metrics';
import { buildPlan } from '../src/provision/plan';
import { runProvision } from '../src/provision/run';
import { loadProvisionSettings } from '../src/provision/settings';
import { taskQueuesFor } from '../src/shared/saga-contract';
import { PrivateTemporal } from '../src/stack/private-temporal';
import type { CpuSnapshot } from './cpu-accounting';
import { childrenOf, cpuMsPerUnit, cpuSnapshot } from './cpu-accounting';
import { median } from './pipeline-report';

function optionValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
// Positional arguments: neither an option nor the value that follows --rounds.
const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--rounds');
const ORDERS = Number(args[0] ?? 1000);
const PARTITIONS = Number(args[1] ?? 6);
const PER_PARTITION = Number(args[2] ?? 4);
const ROUNDS = Number(optionValue('--rounds') ?? 3);
const IN_FLIGHT = PARTITIONS * PER_PARTITION;
const SHARED = process.argv.includes('--shared-temporal');
const DECODE_RECORDS = 50_000;
const endpoints = stackEndpoints(loadStackConfig());
const tag = `bench_ingress_${Date.now().toString(36)}`;

interface PathResult {
  rate: number;
  /** CPU ms per start by component. */
  cpu: Record<string, number>;
}

interface Bench {
  temporalEnv: Record<string, string>;
  temporalAddress: string;
  kafka: Kafka;
  codec: EventCodec;
  cpuLabels: Map<number, string>;
}

/** CPU ms per start between two snapshots, and the starts per second over that span. */
function measured(before: CpuSnapshot, after: CpuSnapshot, starts: number): PathResult {
  return { rate: starts / ((after.at - before.at) / 1000), cpu: cpuMsPerUnit(before, after, starts) };
}

/** Produces a round's orders to its own topic, then times the ingress consuming them. */
async function throughIngress(b: Bench, round: number): Promise<PathResult> {
  const scope = `${tag}_${round}`;
  const placed = `${scope}.order.placed`;
  // Topics, dead letters and subjects of the round's scope, as `npm run provision` makes them.
  const provision = loadProvisionSettings({ ...process.env, KTS_SCOPE: scope });
  await runProvision(
    buildPlan({
      ...provision.plan,
      cdc: null,
      include: ['topic', 'subject'],
      topics: [TOPICS.orderPlaced, TOPICS.orderCancelled],
      orderPartitions: PARTITIONS,
    }),
    provision.targets,
  );
  const producer = b.kafka.producer();
  await producer.connect();
  const encoded = [];
  for (let i = 0; i < ORDERS; i += 1) {
    const e = placedEvent({ version: i % 2 === 0 ? 1 : 2 });
    encoded.push({ key: e.orderId, value: await b.codec.encode(placed, e) });
  }
  for (let i = 0; i < encoded.length; i += 500) {
    await producer.send({ topic: placed, acks: -1, messages: encoded.slice(i, i + 500) });
  }
  await producer.disconnect();

  // One scope names the round's topics, consumer group and task queues; the ingress starts as its process does.
  const cfg = loadSettings(
    ['ingress'],
    {
      ...process.env,
      ...b.temporalEnv,
      KTS_SCOPE: scope,
      KTS_INGRESS_PARTITION_CONCURRENCY: String(PARTITIONS),
      KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION: String(PER_PARTITION),
      LOG_LEVEL: 'silent',
    },
    { refuseForeignCredentials: false },
  );
  const running = await startRoles(cfg, ['ingress'], {
    logger: createLogger('bench-ingress', undefined, cfg.common.logLevel),
    metrics: createMetrics('bench-ingress'),
  });
  const stats = running.ingress!.consumer.stats.handled;
  // Timed from the first saga started to the last, so the group join is not counted.
  let first: { started: number; cpu: CpuSnapshot } | undefined;
  let result: PathResult;
  for (;;) {
    const started = stats.STARTED;
    if (started > 0 && !first) first = { started, cpu: cpuSnapshot(b.cpuLabels) };
    if (first && started >= ORDERS) {
      result = measured(first.cpu, cpuSnapshot(b.cpuLabels), started - first.started);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await running.stop();
  const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 1 });
  const ledger = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM ingress.processed_events WHERE source_topic = $1 AND outcome = 'STARTED'",
    [placed],
  );
  await db.end();
  if (Number(ledger.rows[0]?.n) !== ORDERS) throw new Error(`ledger has ${ledger.rows[0]?.n} starts, not ${ORDERS}`);
  return result;
}

/** The ingress's start call alone, from IN_FLIGHT concurrent loops. */
async function bareLoop(b: Bench, round: number): Promise<PathResult> {
  const connection = await Connection.connect({ address: b.temporalAddress });
  const gateway = new TemporalSagaGateway(
    new Client({ connection }),
    connection,
    taskQueuesFor(`${tag}_${round}.bare`),
    10_000,
  );
  const events = Array.from({ length: ORDERS }, (_, i) => placedEvent({ version: i % 2 === 0 ? 1 : 2 }));
  let next = 0;
  const before = cpuSnapshot(b.cpuLabels);
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = next++; i < ORDERS; i = next++) {
        const e = events[i]!;
        const { outcome } = await gateway.start(upcastOrderPlaced(e), e.eventVersion);
        if (outcome !== 'STARTED') throw new Error(`bare start of ${e.orderId}: ${outcome}`);
      }
    }),
  );
  const result = measured(before, cpuSnapshot(b.cpuLabels), ORDERS);
  await connection.close();
  return result;
}

/** Avro decode + validate + upcast, in-process, of records framed for round 1's topic. */
async function decodeRate(b: Bench): Promise<number> {
  const frames = [];
  for (let i = 0; i < 200; i += 1) {
    frames.push(await b.codec.encode(`${tag}_1.order.placed`, placedEvent({ version: i % 2 === 0 ? 1 : 2 })));
  }
  for (const f of frames) await b.codec.decode(f, 'order.placed'); // warm the caches
  const d0 = performance.now();
  for (let i = 0; i < DECODE_RECORDS; i += 1) {
    const out = await b.codec.decode(frames[i % frames.length]!, 'order.placed');
    if (!out.ok) throw new Error(`bench record did not decode: ${out.reason}`);
  }
  return DECODE_RECORDS / ((performance.now() - d0) / 1000);
}

/** The median of `xs` with its range, e.g. "0.80 (0.69–0.82)". */
function medianWithRange(xs: number[]): string {
  const fmt = (x: number) => (x >= 10 ? x.toFixed(0) : x.toFixed(2));
  const mid = fmt(median(xs));
  return xs.length > 1 ? `${mid} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : mid;
}

function cpuMedians(results: PathResult[]): string {
  const labels = [...new Set(results.flatMap((r) => Object.keys(r.cpu)))];
  return labels.map((l) => `${l} ${medianWithRange(results.map((r) => r.cpu[l] ?? 0))}`).join(', ');
}

async function main(): Promise<void> {
  const privateTemporal = SHARED ? undefined : await PrivateTemporal.create();
  await privateTemporal?.start();
  const b: Bench = {
    temporalEnv: privateTemporal
      ? { KTS_TEMPORAL_PORT: String(privateTemporal.port), KTS_TEMPORAL_UI_PORT: String(privateTemporal.uiPort) }
      : {},
    temporalAddress: privateTemporal?.address ?? endpoints.temporalAddress,
    kafka: new Kafka({ clientId: tag, brokers: endpoints.kafkaBrokers, logLevel: logLevel.ERROR }),
    codec: new EventCodec(new RegistryClient(endpoints.registryUrl)),
    // The private engine is this process's child; the ingress runs in this process ('benchmark process').
    cpuLabels: new Map(childrenOf(process.pid).map((pid) => [pid, 'engine'])),
  };
  try {
    console.log(
      `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
        `temporal: ${privateTemporal ? 'private dev server (SQLite file)' : 'shared stack server'}`,
    );
    console.log(
      `orders per round: ${ORDERS}, rounds: ${ROUNDS}, partitions: ${PARTITIONS}, in flight per partition: ` +
        `${PER_PARTITION} (in flight: ${IN_FLIGHT}), KTS_TEMPORAL_TRACING=${process.env.KTS_TEMPORAL_TRACING ?? 'auto'}`,
    );
    const ingress: PathResult[] = [];
    const bare: PathResult[] = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      // Alternating which path goes first, so a drift of the server over the run hits both alike.
      if (round % 2 === 1) {
        ingress.push(await throughIngress(b, round));
        bare.push(await bareLoop(b, round));
      } else {
        bare.push(await bareLoop(b, round));
        ingress.push(await throughIngress(b, round));
      }
      const [i, r] = [ingress.at(-1)!, bare.at(-1)!];
      console.log(
        `round ${round}/${ROUNDS}: ingress ${i.rate.toFixed(0)}/s, bare ${r.rate.toFixed(0)}/s, ` +
          `ratio ${(i.rate / r.rate).toFixed(2)}; load average ${os.loadavg()[0]!.toFixed(2)}`,
      );
    }
    const decode = await decodeRate(b);
    console.log(`ingress starts/s (Kafka → saga started): ${medianWithRange(ingress.map((r) => r.rate))}`);
    console.log(`bare gateway.start/s (same request):     ${medianWithRange(bare.map((r) => r.rate))}`);
    console.log(
      `ingress / bare, per round:               ${medianWithRange(ingress.map((r, k) => r.rate / bare[k]!.rate))}`,
    );
    console.log(`CPU ms per start, ingress: ${cpuMedians(ingress)}`);
    console.log(`CPU ms per start, bare:    ${cpuMedians(bare)}`);
    console.log(`Avro decode + validate + upcast records/s: ${decode.toFixed(0)}`);
  } finally {
    await privateTemporal?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
