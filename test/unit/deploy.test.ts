import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { historyFromJSON } from '@temporalio/common/lib/proto-utils';

import { summarize } from '../../src/deploy/deploy-check';
import { FixtureExistsError, fixturePath, saveFixture } from '../../src/deploy/history-recorder';
import { parseSince, selectionQuery } from '../../src/deploy/live-histories';
import { replayReason } from '../../src/deploy/replay-check';
import {
  defaultBuildId,
  loadWorkerDeploymentSettings,
  sagaWorkerDeploymentOptions,
} from '../../src/deploy/worker-deployment';

const ROOT = path.join(__dirname, '..', '..');

describe('deploy check selection', () => {
  it('queries orderSaga runs, narrowed by task queue, start time and the user query', () => {
    const since = new Date('2026-11-01T00:00:00.000Z');
    expect(selectionQuery({})).toBe("WorkflowType = 'orderSaga'");
    expect(selectionQuery({ taskQueue: 'order-saga', since, query: "ExecutionStatus = 'Running'" })).toBe(
      "WorkflowType = 'orderSaga' AND TaskQueue = 'order-saga' AND StartTime >= '2026-11-01T00:00:00.000Z' AND (ExecutionStatus = 'Running')",
    );
  });

  it('reads 30m / 24h / 7d back from now, ISO date-times, and nothing else', () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    expect(parseSince('30m', now)?.toISOString()).toBe('2026-11-30T11:30:00.000Z');
    expect(parseSince('24h', now)?.toISOString()).toBe('2026-11-29T12:00:00.000Z');
    expect(parseSince('7d', now)?.toISOString()).toBe('2026-11-23T12:00:00.000Z');
    expect(parseSince('2026-11-01T08:00:00Z', now)?.toISOString()).toBe('2026-11-01T08:00:00.000Z');
    for (const bad of ['7', '7w', 'yesterday', '2026-13-45']) expect(parseSince(bad, now)).toBeUndefined();
  });
});

describe('deploy check report', () => {
  it("keeps what core's nondeterminism error says, not its boilerplate", () => {
    const message =
      'Replay failed with a nondeterminism error. This means that the workflow code as written is not compatible ' +
      'with the history that was fed in. Details: Workflow activation completion failed: Failure { failure: ' +
      'Some(Failure { message: "[TMPRL1100] Nondeterminism error: Activity machine does not handle this event: ' +
      'HistoryEvent(id: 5, TimerStarted)", source: "" }) }';
    expect(replayReason(message)).toBe(
      '[TMPRL1100] Nondeterminism error: Activity machine does not handle this event: HistoryEvent(id: 5, TimerStarted)',
    );
    expect(replayReason('Workflow task failed\n    at stack')).toBe('Workflow task failed');
  });

  it('closes with what was checked and a verdict', () => {
    expect(summarize({ problems: [], replay: { replayed: 12, failed: 0, gone: 1 }, codegen: { current: true } })).toBe(
      '12 histories replayed, 0 failed, 1 gone before download; schemas skipped; generated types current\n✔ deploy check passed',
    );
    const failed = summarize({
      problems: [{ type: 'GeneratedTypesStale', target: 'x', message: 'y' }],
      codegen: { current: false },
    });
    expect(failed).toBe('replay skipped; schemas skipped; generated types stale\n✖ deploy check failed: 1 problem');
  });
});

describe('history recorder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kts-recorder-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('names fixtures <scenario>-<version> and refuses names the replay suite could not parse', () => {
    expect(path.basename(fixturePath({ scenario: 'happy-path', version: 'v3', dir }))).toBe('happy-path-v3.json');
    expect(() => fixturePath({ scenario: 'Happy Path', version: 'v3', dir })).toThrow(/scenario/);
    expect(() => fixturePath({ scenario: 'x', version: '../v3', dir })).toThrow(/version/);
  });

  it("writes the server's JSON form, byte for byte as the fixtures hold it, and never overwrites by accident", async () => {
    const original = await readFile(path.join(ROOT, 'test', 'replay', 'histories', 'happy-path-v2.json'), 'utf8');
    const history = historyFromJSON(JSON.parse(original));
    const file = await saveFixture(history, { scenario: 'probe', version: 'v1', dir });
    expect(await readFile(file, 'utf8')).toBe(original);
    await expect(saveFixture(history, { scenario: 'probe', version: 'v1', dir })).rejects.toBeInstanceOf(
      FixtureExistsError,
    );
    await expect(saveFixture(history, { scenario: 'probe', version: 'v1', dir, overwrite: true })).resolves.toBe(file);
  });
});

describe('saga worker deployment settings', () => {
  it('is unversioned unless turned on; then PINNED under the deployment name and build id', () => {
    expect(sagaWorkerDeploymentOptions(loadWorkerDeploymentSettings({}))).toBeUndefined();
    const on = loadWorkerDeploymentSettings({
      KTS_WORKER_VERSIONING: 'on',
      KTS_WORKER_DEPLOYMENT_NAME: 'shop-saga',
      KTS_WORKER_BUILD_ID: '1.4.0-abc123',
    });
    expect(sagaWorkerDeploymentOptions(on)).toEqual({
      version: { deploymentName: 'shop-saga', buildId: '1.4.0-abc123' },
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'PINNED',
    });
  });

  it('defaults the build id to the package version and the git revision', () => {
    expect(defaultBuildId(ROOT)).toMatch(/^0\.\d+\.\d+-[0-9a-f]{10}(-dirty)?$/);
    expect(loadWorkerDeploymentSettings({}).version).toEqual({
      deploymentName: 'kts-order-saga',
      buildId: defaultBuildId(ROOT),
    });
  });

  it('refuses names a version string could not carry, naming the variable', () => {
    expect(() => loadWorkerDeploymentSettings({ KTS_WORKER_DEPLOYMENT_NAME: 'a.b' })).toThrow(
      /KTS_WORKER_DEPLOYMENT_NAME/,
    );
    expect(() => loadWorkerDeploymentSettings({ KTS_WORKER_VERSIONING: 'yes' })).toThrow(/KTS_WORKER_VERSIONING/);
  });
});
