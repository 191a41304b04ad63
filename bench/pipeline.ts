/**
 * `npm run bench -- pipeline [--quick] [options]`: the whole pipeline under an open-loop load, against
 * the engine's floor in the same run (issue #10 item 2). Orders go to Kafka as an external producer
 * sends them (the registry's schemas, Avro, Confluent framing, v1 and v2 mixed, ~10% declined cards,
 * SKUs spread); the ingress, every worker, the event store and the loyalty service each run as their
 * own OS process from their real entry points; Debezium publishes the outbox through a connector of
 * the run's own scope. Between those windows, at the same rates, a bare workflow of the same activity
 * topology (no-op activities) is started straight from a client. Results: bench/results/*.json, an
 * SVG chart and a table. Run `npm run bench -- pipeline --help` for the options.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import avro from 'avsc';
import { Command, Option } from 'commander';
import type { Admin, Consumer, Producer } from 'kafkajs';
import pg from 'pg';

import type { RoleProcess } from '../src/app/role-process';
import { envForRoles, spawnRoleProcess } from '../src/app/role-process';
import { removeOutboxConnector } from '../src/cdc/outbox-connector';
import { placedEvent } from '../src/cli/order-events';
import { createKafka } from '../src/config/clients';
import { connectorOptionsFor } from '../src/config/scope';
import type { Role } from '../src/config/settings';
import { loadSettings } from '../src/config/settings';
import { repoRoot } from '../src/config/stack-config';
import { deadLetterTopic } from '../src/events/topics';
import { fetchConsumerLag, fetchTopicSize } from '../src/observability/consumer-lag';
import { buildPlan } from '../src/provision/plan';
import { runProvision } from '../src/provision/run';
import { provisionSettingsFrom } from '../src/provision/settings';
import { SERVICE_NAMES } from '../src/services/registry';
import { orderWorkflowId, taskQueuesFor } from '../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../src/simulated-external/card-gateway';
import type { EngineKind } from '../src/stack/private-temporal-engine';
import { ENGINE_KINDS, startPrivateEngine } from '../src/stack/private-temporal-engine';
import { childrenOf, coresBetween, cpuSnapshot } from './cpu-accounting';
import type { WindowResult } from './pipeline-report';
import { isBounded, percentiles, renderCpuTable, renderSvg, renderTable, summarize, trend } from './pipeline-report';

const program = new Command('bench pipeline')
  .description('Open-loop load through the whole pipeline, against the engine floor, interleaved')
  .option('--quick', 'smoke run: rates 2,6, 8 s windows, one round (≈ 3 min)')
  .option('--rates <list>', 'offered rates, orders per second', '2,4,6,8,12,16')
  .option('--window <seconds>', 'seconds of load per window', '45')
  .option('--rounds <n>', 'rounds of every series at every rate', '3')
  .addOption(new Option('--engine <kind>', 'Temporal engine, fresh per run').choices(ENGINE_KINDS).default('dev'))
  .option('--ingress-replicas <n>', 'ingress processes in the one consumer group', '1')
  .option('--workers-per-service <n>', 'processes per worker role (the orchestrator and each service)', '1')
  .option('--no-loyalty', 'do not run the loyalty service')
  .option('--hot-sku', 'add a series whose orders all buy one SKU (row contention), reported apart')
  .option('--loyalty-ab <rate>', 'instead: the pipeline with vs without the loyalty service at one rate')
  .option('--no-engine-floor', 'skip the bare-workflow windows')
  .option('--from <json>', 'instead: summarise the windows of an earlier run again and redraw its chart (no load)')
  .parse();
const opts = program.opts<{
  quick?: boolean;
  rates: string;
  window: string;
  rounds: string;
  engine: EngineKind;
  ingressReplicas: string;
  workersPerService: string;
  loyalty: boolean;
  hotSku?: boolean;
  loyaltyAb?: string;
  engineFloor: boolean;
  from?: string;
}>();
const QUICK = Boolean(opts.quick);
const RATES = (QUICK ? '2,6' : opts.rates).split(',').map(Number);
const WINDOW_S = QUICK ? 8 : Number(opts.window);
const ROUNDS = QUICK ? 1 : Number(opts.rounds);
const INGRESS_REPLICAS = Number(opts.ingressReplicas);
const WORKERS_PER_SERVICE = Number(opts.workersPerService);
const AB_RATE = opts.loyaltyAb === undefined ? undefined : Number(opts.loyaltyAb);
/** Share of orders paying with a card the gateway declines, and of orders sent as order.placed v1. */
const DECLINED_SHARE = 0.1;
const V1_SHARE = 0.3;
const SKU_COUNT = 200;
/** How long a window's stragglers may take to finish before they count as errors. */
const DRAIN_MS = QUICK ? 30_000 : 120_000;
const numeric: [string, number][] = [
  ['--window', WINDOW_S],
  ['--rounds', ROUNDS],
  ['--ingress-replicas', INGRESS_REPLICAS],
  ['--workers-per-service', WORKERS_PER_SERVICE],
  ...RATES.map((r): [string, number] => ['--rates', r]),
];
for (const [name, n] of numeric) {
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`invalid ${name}: ${String(n)}`);
}

const scope = `bench-pipe-${Date.now().toString(36)}`;
const say = (msg: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A producer that knows nothing of this code base: the registry's schemas, Avro, Confluent framing. */
class ExternalProducer {
  private constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly versions: Map<number, { id: number; type: avro.Type }>,
  ) {}

  static async connect(producer: Producer, topic: string, registryUrl: string): Promise<ExternalProducer> {
    const subject = `${registryUrl}/subjects/${encodeURIComponent(`${topic}-value`)}/versions`;
    const versions = new Map<number, { id: number; type: avro.Type }>();
    for (const v of [1, 2]) {
      const res = await fetch(`${subject}/${v}`);
      if (!res.ok) throw new Error(`registry answered ${res.status} for ${topic}-value version ${v}`);
      const s = (await res.json()) as { id: number; schema: string };
      versions.set(v, { id: s.id, type: avro.Type.forSchema(JSON.parse(s.schema) as avro.Schema) });
    }
    await producer.connect();
    return new ExternalProducer(producer, topic, versions);
  }

  close(): Promise<void> {
    return this.producer.disconnect();
  }

  /** Magic byte 0, the schema id (big-endian), the Avro body of the event's own version; key = orderId. */
  async send(event: { orderId: string; eventVersion: number }): Promise<void> {
    const v = this.versions.get(event.eventVersion)!;
    const header = Buffer.alloc(5);
    header.writeUInt32BE(v.id, 1);
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: [{ key: event.orderId, value: Buffer.concat([header, v.type.toBuffer(event)]) }],
    });
  }
}

/** One process role of the pipeline: its entry point and the roles whose credentials it is handed. */
const WORKER_ENTRIES: { name: string; entry: string; role: Role }[] = [
  { name: 'saga', entry: 'workers/saga-worker.ts', role: 'saga' },
  ...SERVICE_NAMES.map((s) => ({ name: s, entry: `src/services/${s}/${s}-worker.ts`, role: s })),
];

async function main(): Promise<void> {
  const startedAt = new Date();
  const env = { ...process.env, KTS_SCOPE: scope, LOG_LEVEL: 'info', KTS_METRICS_PORT: '0' };
  const processes: RoleProcess[] = [];
  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  let client: Client | undefined;
  const settings = loadSettings(['provision'], env, { refuseForeignCredentials: false });
  const names = settings.common.names;
  const windows: WindowResult[] = [];
  let stopping = false;
  say(`scope ${scope}; ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}; engine ${opts.engine}`);
  try {
    const t0 = Date.now();
    // A fresh private engine per run, so the figures are not skewed by a server that already holds
    // thousands of workflows; the full server reports its start-up phases as it goes.
    const engine = await startPrivateEngine(opts.engine, { progress: (line) => say(`engine: ${line}`) });
    cleanups.push({ what: 'stop the engine', run: () => engine.stop() });
    // Every process this benchmark has started so far is the engine's (its server, its own children).
    const cpuLabels = new Map<number, string>(childrenOf(process.pid).map((pid) => [pid, 'engine']));
    say(`engine up at ${engine.address} (${Date.now() - t0} ms)`);
    const runEnv = { ...env, TEMPORAL_ADDRESS: engine.address };
    const provision = provisionSettingsFrom(loadSettings(['provision'], runEnv, { refuseForeignCredentials: false }));
    // The scope provisioned as `npm run provision` does it: topics, subjects, search attributes and
    // its own outbox connector (slot, publication) on the shared Connect.
    await runProvision(buildPlan(provision.plan), provision.targets);
    cleanups.push({
      what: 'remove the connector and its slot',
      run: () => removeOutboxConnector(provision.targets, connectorOptionsFor(names)),
    });
    say(`scope provisioned (${Date.now() - t0} ms)`);

    const adminDb = new pg.Pool({ connectionString: settings.roles.provision.adminUrl, max: 2 });
    cleanups.push({ what: 'close the admin pool', run: () => adminDb.end() });
    const skus = Array.from({ length: SKU_COUNT }, (_, i) => `${scope}-sku-${i}`);
    const hotSku = `${scope}-hot`;
    await adminDb.query('INSERT INTO inventory.stock (sku, available) SELECT s, 1000000000 FROM unnest($1::text[]) s', [
      [...skus, hotSku],
    ]);

    // The processes, each from its real entry point with only its own credentials.
    const logDir = path.join(repoRoot(), '.stack', 'logs', 'bench', scope);
    const spawnRole = (name: string, entry: string, roles: Role[]) => {
      const p = spawnRoleProcess(
        name,
        entry,
        envForRoles(roles, runEnv),
        path.join(logDir, `${name}.log`),
        `${roles.join('+')} running`,
      );
      processes.push(p);
      if (p.child.pid !== undefined) cpuLabels.set(p.child.pid, name.replace(/-\d+$/, ''));
      return p;
    };
    for (const w of WORKER_ENTRIES) {
      for (let i = 0; i < WORKERS_PER_SERVICE; i++) spawnRole(`${w.name}-${i}`, w.entry, [w.role]);
    }
    for (let i = 0; i < INGRESS_REPLICAS; i++) spawnRole(`ingress-${i}`, 'src/ingress/main.ts', ['ingress']);
    spawnRole('event-store', 'src/event-store/main.ts', ['eventStore']);
    let loyalty = opts.loyalty ? spawnRole('loyalty', 'src/services/loyalty/loyalty-main.ts', ['loyalty']) : undefined;

    // The engine floor's workers live in this process: the bare workflow and one no-op worker per queue.
    Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    const bareQueues = taskQueuesFor(`${scope}-bare`);
    const bundle = opts.engineFloor
      ? bundleWorkflowCode({
          workflowsPath: path.join(__dirname, 'saga-baseline-workflow.ts'),
          logger: new DefaultLogger('ERROR'),
        })
      : undefined;
    await waitWithProgress('processes ready', Promise.all(processes.map((p) => p.ready)), () =>
      processes.map((p) => `${p.name}:${p.child.exitCode === null ? 'up' : 'exited'}`).join(' '),
    );
    cleanups.unshift({
      what: 'stop the processes',
      run: () => {
        stopping = true;
        return Promise.all(processes.map((p) => p.stop()));
      },
    });
    say(`${processes.length} processes ready (${Date.now() - t0} ms); logs in ${logDir}`);

    const connection = await NativeConnection.connect({ address: engine.address });
    client = new Client({ connection, namespace: settings.temporal.namespace });
    const bareWorkers: Worker[] = [];
    if (bundle) {
      const noop = { noop: (step: string) => Promise.resolve(step) };
      bareWorkers.push(
        await Worker.create({ connection, taskQueue: bareQueues.saga, workflowBundle: await bundle }),
        ...(await Promise.all(
          SERVICE_NAMES.map((s) => Worker.create({ connection, taskQueue: bareQueues[s], activities: noop })),
        )),
      );
    }
    const bareRuns = bareWorkers.map((w) => w.run());
    cleanups.unshift({
      what: 'stop the bare workers',
      run: async () => {
        for (const w of bareWorkers) if (w.getState() === 'RUNNING') w.shutdown();
        await Promise.all(bareRuns);
        await connection.close();
      },
    });

    // Kafka: the external producer, an admin for lag, and a consumer of the outcomes.
    const kafka = createKafka(settings.kafka, `${scope}-bench`);
    const producer = await ExternalProducer.connect(kafka.producer(), names.topics.orderPlaced, settings.registry.url);
    const admin: Admin = kafka.admin();
    await admin.connect();
    const outcomes = new Map<string, { type: 'confirmed' | 'failed'; at: number }>();
    const consumer: Consumer = kafka.consumer({ groupId: `${scope}.bench-outcomes`, maxWaitTimeInMs: 50 });
    await consumer.connect();
    await consumer.subscribe({ topics: [names.topics.orderConfirmed, names.topics.orderFailed], fromBeginning: true });
    await consumer.run({
      // The key is the orderId (the outbox row's aggregate id); the first sighting counts.
      eachMessage: ({ topic, message }) => {
        const id = message.key?.toString();
        if (id && !outcomes.has(id)) {
          outcomes.set(id, { type: topic === names.topics.orderConfirmed ? 'confirmed' : 'failed', at: Date.now() });
        }
        return Promise.resolve();
      },
    });
    cleanups.unshift({
      what: 'close Kafka clients',
      run: async () => {
        await consumer.disconnect();
        await producer.close();
        await admin.disconnect();
      },
    });
    const dlqTopic = deadLetterTopic(names.topics.orderPlaced);
    const ingressLag = async () =>
      (await fetchConsumerLag(admin, names.groups.ingress, [names.topics.orderPlaced])).reduce((n, p) => n + p.lag, 0);

    /** Closed workflows on `taskQueue` since `since`: id → close time and status. */
    const closedSince = async (taskQueue: string, since: Date) => {
      const out = new Map<string, { closeMs: number; status: string }>();
      const query = `TaskQueue = '${taskQueue}' AND ExecutionStatus != 'Running' AND StartTime >= '${since.toISOString()}'`;
      for await (const wf of client!.workflow.list({ query })) {
        if (wf.closeTime) out.set(wf.workflowId, { closeMs: wf.closeTime.getTime(), status: wf.status.name });
      }
      return out;
    };

    type Series = 'pipeline' | 'pipeline-hot-sku' | 'pipeline-no-loyalty' | 'pipeline-loyalty' | 'engine';

    /** One open-loop window of `series` at `rate`, drained and measured. */
    const runWindow = async (series: Series, rate: number, round: number, seconds: number): Promise<WindowResult> => {
      const isEngine = series === 'engine';
      const windowStart = new Date(Date.now() - 1000);
      const dlqBefore = isEngine ? 0 : await fetchTopicSize(admin, dlqTopic);
      const sent = new Map<string, { at: number; declined: boolean }>();
      const finished = new Set<string>();
      let failedSends = 0;
      const lagSamples: number[] = [];
      const inFlightSamples: number[] = [];
      const total = Math.round(rate * seconds);
      const t0 = Date.now();
      const pending: Promise<unknown>[] = [];
      const cpuBefore = cpuSnapshot(cpuLabels);
      let lastTick = t0;
      let lastFinished = 0;
      // Backlog trends are of the open-loop phase only: during the drain every backlog falls.
      const phase = { sending: true };
      const isDone = (id: string) => (isEngine ? finished.has(id) : outcomes.has(id));
      const doneCount = () => [...sent.keys()].filter(isDone).length;
      const sampler = setInterval(() => {
        const done = doneCount();
        if (phase.sending) inFlightSamples.push(sent.size - done);
        if (phase.sending && !isEngine)
          void ingressLag().then(
            (l) => lagSamples.push(l),
            () => undefined,
          );
        const now = Date.now();
        if (now - lastTick >= 2000) {
          say(
            `  ${series} ${rate}/s r${round} t=${((now - t0) / 1000).toFixed(0)}s sent ${sent.size} ` +
              `finished ${done} (${(((done - lastFinished) * 1000) / (now - lastTick)).toFixed(1)}/s) ` +
              `in flight ${sent.size - done}${isEngine ? '' : ` lag ${lagSamples.at(-1) ?? '?'}`}`,
          );
          lastTick = now;
          lastFinished = done;
        }
      }, 1000);
      try {
        for (let i = 0; i < total; i++) {
          const wait = t0 + (i * 1000) / rate - Date.now();
          if (wait > 0) await sleep(wait);
          if (isEngine) {
            const id = `${scope}-bare-${series}-${rate}-${round}-${i}`;
            sent.set(id, { at: Date.now(), declined: false });
            pending.push(
              client!.workflow
                .start('bareSaga', { taskQueue: bareQueues.saga, workflowId: id, args: [bareQueues] })
                .then((h) => h.result())
                .then(
                  () => finished.add(id),
                  () => (failedSends += 1),
                ),
            );
          } else {
            const declined = Math.random() < DECLINED_SHARE;
            const event = placedEvent({
              version: Math.random() < V1_SHARE ? 1 : 2,
              skus: series === 'pipeline-hot-sku' ? [hotSku] : skus,
              paymentToken: declined ? DECLINED_CARD_TOKEN : undefined,
            });
            sent.set(event.orderId, { at: event.occurredAt, declined });
            pending.push(producer.send(event).catch(() => (failedSends += 1)));
          }
        }
        const sendSeconds = (Date.now() - t0) / 1000;
        phase.sending = false;
        const drainDeadline = Date.now() + DRAIN_MS;
        while (doneCount() + failedSends < sent.size && Date.now() < drainDeadline) await sleep(250);
        clearInterval(sampler);
        const cpu = coresBetween(cpuBefore, cpuSnapshot(cpuLabels));
        const queue = isEngine ? bareQueues.saga : names.taskQueues.saga;
        let closed = await closedSince(queue, windowStart);
        // Visibility trails the close by a moment.
        for (let i = 0; i < 20 && [...sent.keys()].some((id) => isDone(id) && !closed.has(wfId(id))); i++) {
          await sleep(250);
          closed = await closedSince(queue, windowStart);
        }
        function wfId(id: string) {
          return isEngine ? id : orderWorkflowId(id);
        }
        const toClosed: number[] = [];
        const toConfirmed: number[] = [];
        const closes: number[] = [];
        let notClosed = 0;
        let notCompleted = 0;
        let unexpectedOutcome = 0;
        for (const [id, s] of sent) {
          const c = closed.get(wfId(id));
          if (!c) {
            notClosed += 1;
            continue;
          }
          if (c.status !== 'COMPLETED') notCompleted += 1;
          toClosed.push(c.closeMs - s.at);
          closes.push(c.closeMs);
          if (isEngine) continue;
          const o = outcomes.get(id);
          if (!o || (o.type === 'failed') !== s.declined) unexpectedOutcome += 1;
          else if (o.type === 'confirmed') toConfirmed.push(o.at - s.at);
        }
        closes.sort((a, b) => a - b);
        const span = (closes.at(-1)! - closes[0]!) / 1000;
        const lag = isEngine ? null : trend(lagSamples);
        const inFlight = trend(inFlightSamples);
        return {
          series,
          rate,
          round,
          windowSeconds: seconds,
          sent: sent.size,
          sendRate: sent.size / sendSeconds,
          closed: closes.length,
          completionRate: closes.length > 1 && span > 0 ? (closes.length - 1) / span : NaN,
          toClosedMs: percentiles(toClosed),
          toConfirmedMs: isEngine ? null : percentiles(toConfirmed),
          lag,
          inFlight,
          bounded: isBounded(inFlight, rate) && (!lag || isBounded(lag, rate)) && notClosed === 0,
          cpu,
          errors: {
            deadLetters: isEngine ? 0 : (await fetchTopicSize(admin, dlqTopic)) - dlqBefore,
            notClosed: notClosed + failedSends,
            notCompleted,
            unexpectedOutcome,
          },
        };
      } finally {
        clearInterval(sampler);
        await Promise.allSettled(pending);
      }
    };

    const record = (w: WindowResult) => {
      windows.push(w);
      say(
        `${w.series} ${w.rate}/s r${w.round}: sent ${w.sent} at ${w.sendRate.toFixed(1)}/s, closed ${w.closed} ` +
          `at ${w.completionRate.toFixed(1)}/s, p50/p95/p99 ${w.toClosedMs?.p50}/${w.toClosedMs?.p95}/${w.toClosedMs?.p99} ms` +
          `${w.toConfirmedMs ? `, to order.confirmed p99 ${w.toConfirmedMs.p99} ms` : ''}, ` +
          `${w.bounded ? 'bounded' : 'BACKLOG GREW'}, errors ${JSON.stringify(w.errors)}`,
      );
      if (w.cpu) {
        const top = Object.entries(w.cpu).slice(0, 8);
        say(`  cores: ${top.map(([c, n]) => `${c} ${n.toFixed(2)}`).join(', ')}`);
      }
    };
    const setLoyalty = async (on: boolean) => {
      if (on && !loyalty) {
        loyalty = spawnRole('loyalty', 'src/services/loyalty/loyalty-main.ts', ['loyalty']);
        await loyalty.ready;
      } else if (!on && loyalty) {
        const p = loyalty;
        loyalty = undefined;
        // Out of the list first: an exit the benchmark asked for is not reported as a crash.
        processes.splice(processes.indexOf(p), 1);
        await p.stop();
      }
    };
    /** Waits for the loyalty service to catch up, so a window never pays for the one before it. */
    const settle = async () => {
      await sleep(1000);
      if (!loyalty) return;
      const deadline = Date.now() + 60_000;
      const topics = [names.topics.orderConfirmed];
      while (Date.now() < deadline) {
        const lag = (await fetchConsumerLag(admin, names.groups.loyalty, topics)).reduce((n, p) => n + p.lag, 0);
        if (lag === 0) return;
        await sleep(500);
      }
    };
    for (const p of processes) {
      void p.exited.then((code) => {
        if (!stopping && processes.includes(p)) say(`!! ${p.name} exited (${code}):\n${p.tail(10)}`);
      });
    }

    // Warm-up (caches, bundles, connections, the connector's first records): not measured.
    say('warm-up');
    await runWindow('pipeline', RATES[0]!, 0, QUICK ? 3 : 10);
    if (bundle && AB_RATE === undefined) await runWindow('engine', RATES[0]!, 0, QUICK ? 3 : 10);

    const plan: [Series, number][] = [];
    if (AB_RATE !== undefined) {
      plan.push(['pipeline-loyalty', AB_RATE], ['pipeline-no-loyalty', AB_RATE]);
    } else {
      for (const rate of RATES) {
        plan.push(['pipeline', rate]);
        if (bundle) plan.push(['engine', rate]);
        if (opts.hotSku) plan.push(['pipeline-hot-sku', rate]);
      }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order of the series each round, so no series always follows the same one.
      const order = round % 2 === 0 && AB_RATE !== undefined ? [...plan].reverse() : plan;
      for (const [series, rate] of order) {
        if (series === 'pipeline-loyalty') await setLoyalty(true);
        if (series === 'pipeline-no-loyalty') await setLoyalty(false);
        await settle();
        record(await runWindow(series, rate, round, WINDOW_S));
      }
    }
  } finally {
    if (client) {
      const c = client;
      cleanups.unshift({
        what: 'terminate running workflows',
        run: () => terminateRunning(c, [names.taskQueues.saga, taskQueuesFor(`${scope}-bare`).saga]),
      });
    }
    for (const c of cleanups) {
      try {
        await c.run();
      } catch (err) {
        say(`cleanup (${c.what}) failed: ${(err as Error).message}`);
      }
    }
    await deleteScopeTopics(settings).catch((err: unknown) => say(`deleting topics failed: ${String(err)}`));
  }

  const label = QUICK ? 'pipeline-quick' : AB_RATE !== undefined ? 'pipeline-loyalty-ab' : 'pipeline';
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  writeReport({
    label,
    title: `${QUICK ? 'SMOKE (--quick) ' : ''}pipeline vs engine floor, ${opts.engine} engine, ${startedAt.toISOString().slice(0, 10)}`,
    command: `npm run bench -- pipeline ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt,
    machine,
    loadAverageAtEnd: os.loadavg(),
    settings: {
      rates: AB_RATE !== undefined ? [AB_RATE] : RATES,
      windowSeconds: WINDOW_S,
      rounds: ROUNDS,
      engine: opts.engine,
      ingressReplicas: INGRESS_REPLICAS,
      workersPerService: WORKERS_PER_SERVICE,
      loyalty: opts.loyalty,
      hotSku: Boolean(opts.hotSku),
      declinedShare: DECLINED_SHARE,
      v1Share: V1_SHARE,
      skus: SKU_COUNT,
    },
    windows,
  });
  if (windows.some((w) => w.errors.notClosed || w.errors.notCompleted || w.errors.unexpectedOutcome)) {
    process.exitCode = 1;
  }
}

/** One run as written to bench/results: what ran, where, and every window; summaries derive from them. */
interface RunRecord {
  command: string;
  startedAt: Date;
  machine: string;
  loadAverageAtEnd: number[];
  settings: { engine: EngineKind; rates: number[]; [k: string]: unknown };
  windows: WindowResult[];
}

/**
 * Writes a run's JSON (with its summaries) and its chart, and prints the table. The chart is named
 * by the kind of run, the engine and the process counts (pipeline.svg, pipeline-server.svg,
 * pipeline-workers-2.svg, …), so BENCHMARKS.md shows the latest of each and one never replaces another.
 */
function writeReport(run: RunRecord & { label: string; title: string }): void {
  const { label, title, ...record } = run;
  const summaries = summarize(record.windows);
  const dir = path.join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date(record.startedAt).toISOString().slice(0, 16).replace(':', '-');
  const variant = variantSuffix(record.settings);
  const jsonFile = path.join(dir, `${label}-${stamp}${variant}.json`);
  const svgFile = path.join(dir, `${label}${variant}.svg`);
  const { windows, ...head } = record;
  writeFileSync(jsonFile, JSON.stringify({ ...head, summaries, windows }, null, 2) + '\n');
  writeFileSync(svgFile, renderSvg(summaries, title));
  process.stdout.write(
    `\n${record.command}\nmachine: ${record.machine}\n\n${renderTable(summaries)}\n\n${renderCpuTable(record.windows)}\n\n` +
      `wrote ${jsonFile}\nwrote ${svgFile}\n`,
  );
}

/** What sets a run apart from the default one, for its file names: '', '-server', '-workers-2-ingress-2', … */
function variantSuffix(settings: RunRecord['settings']): string {
  const parts: string[] = [];
  if (settings.engine !== 'dev') parts.push(settings.engine);
  if (Number(settings.workersPerService ?? 1) > 1) parts.push(`workers-${String(settings.workersPerService)}`);
  if (Number(settings.ingressReplicas ?? 1) > 1) parts.push(`ingress-${String(settings.ingressReplicas)}`);
  return parts.map((p) => `-${p}`).join('');
}

/** --from: the windows of an earlier run summarised again (after a change to the report), no load. */
function rewriteReport(file: string): void {
  const record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  const base = path.basename(file);
  const label = base.startsWith('pipeline-quick')
    ? 'pipeline-quick'
    : base.startsWith('pipeline-loyalty-ab')
      ? 'pipeline-loyalty-ab'
      : 'pipeline';
  const day = new Date(record.startedAt).toISOString().slice(0, 10);
  writeReport({
    ...record,
    label,
    title: `${label === 'pipeline-quick' ? 'SMOKE (--quick) ' : ''}pipeline vs engine floor, ${record.settings.engine} engine, ${day}`,
  });
}

/** Prints what is still awaited every few seconds, so a slow start is never silent. */
async function waitWithProgress<T>(what: string, p: Promise<T>, state: () => string): Promise<T> {
  const t0 = Date.now();
  const timer = setInterval(
    () => say(`  waiting for ${what} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${state()}`),
    3000,
  );
  try {
    return await p;
  } finally {
    clearInterval(timer);
  }
}

/** Nothing of the run stays RUNNING, even on a server that outlives it. */
async function terminateRunning(client: Client, queues: string[]): Promise<void> {
  for (const q of queues) {
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${q}' AND ExecutionStatus = 'Running'` })) {
      await client.workflow
        .getHandle(wf.workflowId, wf.runId)
        .terminate('benchmark over')
        .catch((err: unknown) => {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        });
    }
  }
}

/** The scope's topics (order topics, dead letters, domain topics, the connector's heartbeat). */
async function deleteScopeTopics(settings: { kafka: Parameters<typeof createKafka>[0] }): Promise<void> {
  const admin = createKafka(settings.kafka, `${scope}-cleanup`).admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${scope}.`) || t.startsWith(`${scope}_`));
    if (mine.length) await admin.deleteTopics({ topics: mine });
    say(`deleted ${mine.length} topics of the scope`);
  } finally {
    await admin.disconnect();
  }
}

// Everything was stopped above; the exit is explicit because the Temporal SDK's native runtime,
// installed for the bare workers, keeps the event loop alive after its last worker ends.
(opts.from ? Promise.resolve(rewriteReport(opts.from)) : main()).then(
  () => process.exit(),
  (err: unknown) => {
    process.stderr.write(
      `pipeline benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
