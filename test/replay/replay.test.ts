/**
 * Deploy safety for orderSaga: every history in histories/ was recorded from the real server by the
 * project's recorder (src/deploy/history-recorder.ts), files named <scenario>-<version>: the workflow
 * tests call it with `RECORD_HISTORIES=1 npm run test:workflows`, and `npm run histories:record` saves
 * any run of any server. Each must keep replaying against the current code. Never re-record an old
 * version's files: they stand for runs that may still be open when the new code deploys. The same
 * proof against the histories a server holds now is `npm run deploy:check`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import type { NativeConnection, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';

import { initTracing, temporalTracingPlugin } from '../../src/observability/tracing';
import { PATCHES, taskQueuesFor } from '../../src/shared/saga-contract';
import { sagaMetricsSinks } from '../../workers/saga-metrics-sinks';
import { bundleSagaWorkflows, createSagaWorkers } from '../../workers/saga-workers';

jest.setTimeout(120_000);

const HISTORIES_DIR = path.join(__dirname, 'histories');

interface RecordedHistory {
  name: string;
  history: { events: { markerRecordedEventAttributes?: unknown }[] };
}

async function loadHistories(): Promise<RecordedHistory[]> {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (f) => ({
      name: f.replace(/\.json$/, ''),
      history: JSON.parse(await readFile(path.join(HISTORIES_DIR, f), 'utf8')) as RecordedHistory['history'],
    })),
  );
}

/** Replays every history against a bundle; returns each history's error name, or null when it replayed. */
async function replayAll(bundle: WorkflowBundleWithSourceMap, histories: RecordedHistory[]) {
  const outcome: Record<string, string | null> = {};
  const results = Worker.runReplayHistories(
    // The production sinks, so a replay proves their calls change nothing (and are not made).
    // And the tracing plugin as workers register it: the bundle's interceptors need its span sink.
    {
      workflowBundle: bundle,
      sinks: sagaMetricsSinks(),
      plugins: [temporalTracingPlugin(initTracing('replay-test'))],
    },
    histories.map((h) => ({ workflowId: h.name, history: h.history })),
  );
  for await (const result of results) outcome[result.workflowId] = result.error ? result.error.name : null;
  return outcome;
}

interface MarkerAttributes {
  markerName?: string;
  details?: Record<string, { payloads?: { data?: string }[] }>;
}

/** The ids of the patches a history recorded (core_patch markers carry `{"id": ...}` as JSON). */
function patchIds(h: RecordedHistory): string[] {
  return h.history.events.flatMap((e) => {
    const m = e.markerRecordedEventAttributes as MarkerAttributes | undefined;
    if (m?.markerName !== 'core_patch') return [];
    const data = m.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { id: string }).id] : [];
  });
}
const hasPatchMarker = (h: RecordedHistory) => patchIds(h).includes(PATCHES.orderReceivedNotice);
const version = (h: RecordedHistory) => /-(v\d+)$/.exec(h.name)?.[1];

describe('recorded orderSaga histories replay against the current workflow code', () => {
  let histories: RecordedHistory[];
  let current: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    histories = await loadHistories();
    // As production bundles it: with Temporal's OpenTelemetry workflow interceptors.
    current = await bundleSagaWorkflows({ logger: new DefaultLogger('ERROR') });
  });

  it('has the recorded scenarios of both saga versions', () => {
    const scenarios = [
      'happy-path',
      'declined-payment',
      'out-of-stock',
      'cancelled',
      'compensation-retry',
      'compensation-failed',
    ];
    const names = histories.map((h) => h.name);
    for (const s of scenarios) expect(names).toContain(`${s}-v1`);
    expect(names).toEqual(expect.arrayContaining(['happy-path-v2', 'out-of-stock-v2']));
    // v1 ran before the patch existed; v2 recorded its marker. Both kinds must be present to
    // prove the patched() evolution keeps old and new runs replayable.
    expect(histories.filter((h) => h.name.endsWith('-v1')).some(hasPatchMarker)).toBe(false);
    expect(histories.filter((h) => h.name.endsWith('-v2')).every(hasPatchMarker)).toBe(true);
  });

  it('has v3 recordings: search attributes on every run, parking on the parked ones, none of it before v3', () => {
    const v3 = histories.filter((h) => version(h) === 'v3');
    expect(v3.map((h) => h.name)).toEqual(
      expect.arrayContaining(['happy-path-v3', 'parked-retried-v3', 'parked-resolved-v3', 'parked-abandoned-v3']),
    );
    expect(v3.every((h) => patchIds(h).includes(PATCHES.orderSearchAttributes))).toBe(true);
    const parked = v3.filter((h) => h.name.startsWith('parked-'));
    expect(parked.every((h) => patchIds(h).includes(PATCHES.parkOnCompensationFailure))).toBe(true);
    const older = histories.filter((h) => version(h) !== 'v3');
    expect(older.some((h) => patchIds(h).includes(PATCHES.orderSearchAttributes))).toBe(false);
    expect(older.some((h) => patchIds(h).includes(PATCHES.parkOnCompensationFailure))).toBe(false);
  });

  it('replays every history, v1 and v2, without a determinism violation', async () => {
    const outcome = await replayAll(current, histories);
    expect(outcome).toEqual(Object.fromEntries(histories.map((h) => [h.name, null])));
  });

  it('catches a non-deterministic change: the v2 notice without patched() breaks every v1 history', async () => {
    const unpatched = await bundleSagaWorkflows({
      workflowsPath: path.join(__dirname, '..', 'support', 'workflows', 'saga-unpatched-received-notice.ts'),
      logger: new DefaultLogger('ERROR'),
    });
    const outcome = await replayAll(unpatched, histories);
    // v1 runs that got past createOrder now see a different command where the history has reserveStock.
    const v1PastCreate = histories.filter((h) => h.name.endsWith('-v1')).map((h) => h.name);
    for (const name of v1PastCreate) expect([name, outcome[name]]).toEqual([name, 'DeterminismViolationError']);
  });

  it('refuses to run a prebuilt bundle under a worker that traces differently', async () => {
    const untraced = await bundleSagaWorkflows({ logger: new DefaultLogger('ERROR'), traced: false });
    // The check comes before any connection is used.
    const sagaWorker = (workflowBundle: WorkflowBundleWithSourceMap, tracing: boolean) =>
      createSagaWorkers({
        connection: {} as NativeConnection,
        taskQueues: taskQueuesFor('replay-bundle-check'),
        roles: ['saga'],
        workflowBundle,
        observability: { tracing },
      });
    await expect(sagaWorker(current, false)).rejects.toThrow(
      'the prebuilt saga bundle was built with tracing but the saga worker does not trace',
    );
    await expect(sagaWorker(untraced, true)).rejects.toThrow(
      'the prebuilt saga bundle was built without tracing but the saga worker traces',
    );
  });

  it('catches a non-deterministic change: parking without patched() breaks the runs that ended in CompensationFailed', async () => {
    const unpatched = await bundleSagaWorkflows({
      workflowsPath: path.join(__dirname, '..', 'support', 'workflows', 'saga-unpatched-parking.ts'),
      logger: new DefaultLogger('ERROR'),
    });
    const outcome = await replayAll(unpatched, histories);
    for (const name of ['compensation-failed-v1', 'compensation-failed-v2']) {
      expect([name, outcome[name]]).toEqual([name, 'DeterminismViolationError']);
    }
  });
});
