/**
 * A/B of the Temporal dev server's flags (src/stack/temporal-dev-flags.ts): for each variant, two private
 * dev servers run side by side, A with the shared tuning and B differing from it in one value; the same
 * workload runs against them in alternating windows A,B,A,B... for several rounds, so load from anything
 * else on the machine falls on both. Each window measures:
 *  - throughput: a burst of bare 6-activity workflows (bench/saga-baseline-workflow.ts) started at once,
 *    completed per second from the first start to the last result;
 *  - latency at a low rate: the same workflow started open loop at a fixed rate, start → result p50/p95,
 *    and where that time goes, from the server's own event times (the median gap between consecutive
 *    history events of each kind, times how often it occurs in one workflow).
 * Reported: each window, then per variant the ratio B/A of every round with its median and min–max.
 *
 * Usage: npx tsx bench/temporal-flags.ts [--quick] [--rounds=N] [--burst=N] [--rate=R] [--seconds=S] [variant...]
 * Variants: see VARIANTS below (default: all). --quick: 2 rounds, bursts of 20, 5/s for 4 s.
 * Workers are the SDK's defaults, all in this process (one set per server); no stack service is needed.
 */
import os from 'node:os';
import path from 'node:path';

import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';

import { SERVICE_NAMES } from '../src/services/registry';
import type { SagaTaskQueues } from '../src/shared/saga-contract';
import { taskQueuesFor } from '../src/shared/saga-contract';
import { PrivateTemporal } from '../src/stack/private-temporal';
import type { TemporalDevOverrides } from '../src/stack/temporal-dev-flags';
import { temporalDevFlags, tuningWith } from '../src/stack/temporal-dev-flags';

interface Variant {
  /** What B changes, in words. */
  readonly what: string;
  /** B's flags relative to the shared tuning (A). */
  readonly tuning?: TemporalDevOverrides;
  /** Closed and running workflows put into B before the first window (same flags): a "used" server. */
  readonly fill?: { closed: number; running: number };
}

const FULL_FILL = { closed: 3000, running: 100 };
const QUICK_FILL = { closed: 400, running: 20 };

/** Each B differs from A (the shared tuning) in one thing. */
const VARIANTS: Record<string, Variant> = {
  'sync-off': { what: 'synchronous=off', tuning: { sqlitePragmas: { synchronous: 'off' } } },
  'sync-full': { what: 'synchronous=full', tuning: { sqlitePragmas: { synchronous: 'full' } } },
  'no-pragmas': {
    what: "no pragma (start-dev's rollback journal, synchronous=full: the stack before this change)",
    tuning: { sqlitePragmas: { journal_mode: null, synchronous: null } },
  },
  'partitions-4': {
    what: "the server's default of four read and four write partitions per task queue (the shared tuning has one)",
    tuning: {
      dynamicConfig: { 'matching.numTaskqueueReadPartitions': null, 'matching.numTaskqueueWritePartitions': null },
    },
  },
  used: { what: 'same flags, B holds closed and running workflows of earlier use' },
};

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const option = (name: string, full: number, quick: number): number => {
  const given = argv.find((a) => a.startsWith(`--${name}=`));
  return given ? Number(given.split('=')[1]) : QUICK ? quick : full;
};
const ROUNDS = option('rounds', 5, 2);
const BURST = option('burst', 100, 20);
const RATE = option('rate', 5, 5);
const SECONDS = option('seconds', 20, 4);
const chosen = argv.filter((a) => !a.startsWith('--'));
const unknown = chosen.filter((name) => !(name in VARIANTS));
if (unknown.length > 0)
  throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${Object.keys(VARIANTS).join(', ')}`);
const RUN = chosen.length > 0 ? chosen : Object.keys(VARIANTS);
const tag = `bench_flags_${Date.now().toString(36)}`;

/** One server with its own client and the workers of the bare workflow. */
interface Side {
  label: 'A' | 'B';
  server: PrivateTemporal;
  client: Client;
  connection: Connection;
  workerConnection: NativeConnection;
  workers: Worker[];
  runs: Promise<void>[];
  queues: SagaTaskQueues;
}

interface Window {
  label: 'A' | 'B';
  round: number;
  perSecond: number;
  p50: number;
  p95: number;
  /** Median duration of each kind of step between history events, times its count in one workflow. */
  gaps: Map<string, { median: number; perWorkflow: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const median = (values: number[]) =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

async function openSide(label: 'A' | 'B', tuning: TemporalDevOverrides, bundle: WorkflowBundleWithSourceMap) {
  const server = await PrivateTemporal.create({ tuning });
  await server.start();
  const connection = await Connection.connect({ address: server.address });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  const queues = taskQueuesFor(tag);
  const noop = { noop: (step: string) => Promise.resolve(step) };
  const namespace = 'default';
  const workers = [
    await Worker.create({ connection: workerConnection, namespace, taskQueue: queues.saga, workflowBundle: bundle }),
    ...(await Promise.all(
      SERVICE_NAMES.map((s) =>
        Worker.create({ connection: workerConnection, namespace, taskQueue: queues[s], activities: noop }),
      ),
    )),
  ];
  const side: Side = {
    label,
    server,
    client: new Client({ connection, namespace }),
    connection,
    workerConnection,
    workers,
    runs: workers.map((w) => w.run()),
    queues,
  };
  return side;
}

async function closeSide(side: Side): Promise<void> {
  for (const w of side.workers) if (w.getState() === 'RUNNING') w.shutdown();
  await Promise.all(side.runs);
  await side.connection.close();
  await side.workerConnection.close();
  await side.server.stop();
}

let started = 0;
function startBare(side: Side): Promise<WorkflowHandle> {
  started += 1;
  return side.client.workflow.start('bareSaga', {
    taskQueue: side.queues.saga,
    workflowId: `${tag}_${side.label}_${started}`,
    args: [side.queues],
  });
}

/** Starts one bare workflow and waits for its result. */
async function runBare(side: Side): Promise<void> {
  await (await startBare(side)).result();
}

/** A used server: workflows started and terminated (closed, with history and visibility rows) and some left running. */
async function fill(side: Side, closed: number, running: number): Promise<void> {
  const idle = taskQueuesFor(`${tag}_idle`);
  const t0 = performance.now();
  const one = async (i: number, terminate: boolean) => {
    const handle = await side.client.workflow.start('bareSaga', {
      taskQueue: idle.saga, // no worker polls it: the first workflow task stays pending
      workflowId: `${tag}_fill_${i}`,
      args: [idle],
    });
    if (terminate) await handle.terminate('benchmark fill');
  };
  const all = Array.from({ length: closed + running }, (_, i) => i);
  // 16 at a time: enough to fill quickly, few enough not to queue thousands of calls at once.
  for (let i = 0; i < all.length; i += 16) await Promise.all(all.slice(i, i + 16).map((j) => one(j, j < closed)));
  log(
    `  filled B with ${closed} closed and ${running} running workflows in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
}

function eventKind(event: object): string {
  const key = Object.keys(event).find((k) => k.endsWith('EventAttributes') && (event as Record<string, unknown>)[k]);
  return (key ?? 'unknown').replace(/EventAttributes$/, '').replace(/^workflowExecution/, 'workflow');
}

function millis(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
}

async function gapsOf(handles: WorkflowHandle[]): Promise<Window['gaps']> {
  const all = new Map<string, number[]>();
  for (const h of handles) {
    const events = (await h.fetchHistory()).events ?? [];
    for (let i = 1; i < events.length; i++) {
      const kind = `${eventKind(events[i - 1]!)} → ${eventKind(events[i]!)}`;
      const gap = millis(events[i]!.eventTime) - millis(events[i - 1]!.eventTime);
      all.set(kind, [...(all.get(kind) ?? []), gap]);
    }
  }
  return new Map(
    [...all].map(([kind, gaps]) => [kind, { median: median(gaps), perWorkflow: gaps.length / handles.length }]),
  );
}

async function runWindow(side: Side, round: number): Promise<Window> {
  // Throughput: a burst started at once.
  const t0 = performance.now();
  await Promise.all(Array.from({ length: BURST }, () => runBare(side)));
  const perSecond = BURST / ((performance.now() - t0) / 1000);
  // Latency at a low rate, open loop: starts follow the clock, not the results.
  const count = Math.max(1, Math.round(RATE * SECONDS));
  const handles: WorkflowHandle[] = [];
  const latencies: number[] = [];
  const tStart = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    await sleep(Math.max(0, tStart + (i * 1000) / RATE - performance.now()));
    pending.push(
      (async () => {
        const s = performance.now();
        const handle = await startBare(side);
        await handle.result();
        latencies.push(performance.now() - s);
        handles.push(handle);
      })(),
    );
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return {
    label: side.label,
    round,
    perSecond,
    p50: quantile(latencies, 0.5),
    p95: quantile(latencies, 0.95),
    gaps: await gapsOf(handles.slice(0, 20)),
  };
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const ratioLine = (name: string, ratios: number[]) =>
  `  ${name}: median ${fmt(median(ratios))} (min ${fmt(Math.min(...ratios))}, max ${fmt(Math.max(...ratios))}; ${ratios.map((r) => fmt(r)).join(' ')})`;

function printGaps(label: string, windows: Window[]): void {
  const last = windows.filter((w) => w.label === label).at(-1);
  if (!last) return;
  log(`  where ${label}'s low-rate time goes (last round; median gap × occurrences per workflow):`);
  const rows = [...last.gaps].sort((a, b) => b[1].median * b[1].perWorkflow - a[1].median * a[1].perWorkflow);
  let total = 0;
  for (const [kind, g] of rows) {
    total += g.median * g.perWorkflow;
    log(`    ${fmt(g.median, 1).padStart(7)} ms × ${fmt(g.perWorkflow, 1)}  ${kind}`);
  }
  log(`    sum ${fmt(total, 0)} ms of start → close on the server (client p50 start → result ${fmt(last.p50, 0)} ms)`);
}

async function runVariant(name: string, bundle: WorkflowBundleWithSourceMap): Promise<void> {
  const variant = VARIANTS[name]!;
  log(`\n== ${name}: B = ${variant.what}`);
  log(`  A flags: ${temporalDevFlags().join(' ')}`);
  log(`  B flags: ${temporalDevFlags(tuningWith(variant.tuning)).join(' ')}`);
  const [a, b] = await Promise.all([openSide('A', {}, bundle), openSide('B', variant.tuning ?? {}, bundle)]);
  const windows: Window[] = [];
  try {
    if (name === 'used') {
      const f = variant.fill ?? (QUICK ? QUICK_FILL : FULL_FILL);
      await fill(b, f.closed, f.running);
    }
    // Warm-up on both: bundles loaded, caches primed, SQLite pages read.
    await Promise.all([a, b].map((s) => Promise.all(Array.from({ length: 5 }, () => runBare(s)))));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const side of [a, b]) {
        const w = await runWindow(side, round);
        windows.push(w);
        log(
          `  round ${round} ${w.label}: burst ${fmt(w.perSecond, 1)}/s, at ${RATE}/s p50 ${fmt(w.p50, 0)} ms p95 ${fmt(w.p95, 0)} ms`,
        );
      }
    }
  } finally {
    await Promise.all([closeSide(a), closeSide(b)]);
  }
  const pairs = Array.from({ length: ROUNDS }, (_, i) => {
    const [wa, wb] = ['A', 'B'].map((l) => windows.find((w) => w.round === i + 1 && w.label === l)!);
    return { wa: wa!, wb: wb! };
  });
  log(`  ratios B/A over ${ROUNDS} rounds:`);
  log(
    ratioLine(
      'burst throughput (higher = B faster)',
      pairs.map((p) => p.wb.perSecond / p.wa.perSecond),
    ),
  );
  log(
    ratioLine(
      `p50 latency at ${RATE}/s (lower = B faster)`,
      pairs.map((p) => p.wb.p50 / p.wa.p50),
    ),
  );
  printGaps('A', windows);
  printGaps('B', windows);
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  log(
    `machine: ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the start, Node ${process.version}`,
  );
  log(`${ROUNDS} rounds per variant; each window: burst of ${BURST}, then ${RATE}/s for ${SECONDS} s`);
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'saga-baseline-workflow.ts'),
    logger: new DefaultLogger('ERROR'),
  });
  for (const name of RUN) await runVariant(name, bundle);
  log(
    `\nload average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
