/**
 * The pre-deploy check against the real Temporal and registry, on histories and subjects of this
 * test alone (its own task queues and workflow ids, a unique topic prefix), so what it breaks on
 * purpose never reaches the real check. It passes on the current code and schemas, and fails,
 * naming the workflow id or the schema, on a workflow change without patched() that live histories
 * cannot replay and on a schema change the registry refuses.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import type { WorkflowHandle } from '@temporalio/client';

import { runDeployCheck } from '../../src/deploy/deploy-check';
import { checkSchemas } from '../../src/deploy/schema-check';
import { SCHEMAS_DIR } from '../../src/events/codegen';
import { RegistryClient } from '../../src/kafka/registry-client';
import type { SagaHarness } from '../support/saga-harness';
import { newOrder, openSagaHarness, stockedSku, withSagaWorkers } from '../support/saga-harness';
import { endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

const ROOT = path.join(__dirname, '..', '..');
const UNPATCHED = path.join(__dirname, '..', 'support', 'workflows', 'saga-without-received-notice.ts');

/** A schemas folder with copies of some real files, and optionally one file replaced. */
async function schemasDir(files: string[], replace?: { file: string; text: string }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kts-deploy-schemas-'));
  for (const f of files) await copyFile(path.join(SCHEMAS_DIR, f), path.join(dir, f));
  if (replace) await writeFile(path.join(dir, replace.file), replace.text);
  return dir;
}

/** order.placed v2 as a careless change would write it: a new field readers cannot default. */
async function breakingPlacedV2(): Promise<string> {
  const schema = JSON.parse(await readFile(path.join(SCHEMAS_DIR, 'order-placed-v2.avsc'), 'utf8')) as {
    fields: object[];
  };
  schema.fields.push({ name: 'loyaltyTier', type: 'string' });
  return JSON.stringify(schema, null, 2);
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['src/deploy/cli.ts', ...args],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('deploy check', () => {
  let h: SagaHarness;
  const registry = new RegistryClient(endpoints.registryUrl);
  const topicPrefix = `${uniqueName('deploy')}.`;
  const placedSubject = `${topicPrefix}order.placed-value`;
  const cancelledSubject = `${topicPrefix}order.cancelled-value`;
  let closed: WorkflowHandle;
  let open: WorkflowHandle;
  let query: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    h = await openSagaHarness();
    const sku = await stockedSku(h, 10);
    // One run that finished and one still open (waiting at chargePayment: no payments worker).
    closed = await withSagaWorkers(h, {}, async ({ start }) => {
      const handle = await start(newOrder(sku));
      await handle.result();
      return handle;
    });
    open = await withSagaWorkers(h, { roles: ['saga', 'orders', 'inventory', 'notifications'] }, async ({ start }) => {
      const handle = await start(newOrder(sku));
      await waitUntil(
        'the open run to schedule chargePayment',
        async () => {
          const history = await handle.fetchHistory();
          return (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
        },
        (names) => names.includes('chargePayment'),
        { intervalMs: 200 },
      );
      return handle;
    });
    query = `WorkflowId = '${closed.workflowId}' OR WorkflowId = '${open.workflowId}'`;
    // Visibility catches up with the runs a moment after they change.
    await waitUntil(
      'visibility to list both runs',
      async () => (await h.client.workflow.count(query)).count,
      (count) => count >= 2,
      { intervalMs: 200 },
    );

    // This test's own subjects: order.placed holds v1 under BACKWARD, order.cancelled has no rule.
    const file = async (f: string) => JSON.parse(await readFile(path.join(SCHEMAS_DIR, f), 'utf8')) as object;
    await registry.register(placedSubject, await file('order-placed-v1.avsc'));
    await registry.setCompatibility(placedSubject, 'BACKWARD');
    await registry.register(cancelledSubject, await file('order-cancelled-v1.avsc'));
    await registry.setCompatibility(cancelledSubject, 'NONE');
  });

  afterAll(async () => {
    await open?.terminate('deploy check test cleanup').catch(() => undefined);
    await h?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const selection = () => ({ query });

  it('replays the open and the closed run against the current code: no problem', async () => {
    const report = await runDeployCheck({
      client: h.client,
      registry,
      selection: selection(),
      skip: { schemas: true, codegen: true },
    });
    expect(report.problems).toEqual([]);
    expect(report.replay).toEqual({ replayed: 2, failed: 0, gone: 0 });
  });

  it('fails on a workflow change without patched(), naming each run it breaks', async () => {
    const report = await runDeployCheck({
      client: h.client,
      registry,
      selection: selection(),
      workflowsPath: UNPATCHED,
      skip: { schemas: true, codegen: true },
    });
    expect(report.replay).toEqual({ replayed: 2, failed: 2, gone: 0 });
    expect(report.problems.map((p) => p.type)).toEqual(['ReplayFailed', 'ReplayFailed']);
    for (const handle of [closed, open]) {
      const problem = report.problems.find((p) => p.target.startsWith(`${handle.workflowId} (run `));
      expect(problem?.message).toMatch(/^DeterminismViolationError: .*order-received-notice/);
    }
  });

  it('accepts registered and compatible schemas, and flags a subject without BACKWARD', async () => {
    const dir = await schemasDir([
      'order-placed-v1.avsc',
      'order-placed-v2.avsc',
      'order-cancelled-v1.avsc',
      'order-failed-v1.avsc',
    ]);
    dirs.push(dir);
    const results = await checkSchemas(registry, { dir, topicPrefix });
    expect(results.map((r) => [r.file, r.subject, r.verdict.kind])).toEqual([
      ['order-cancelled-v1.avsc', cancelledSubject, 'weak-rule'],
      ['order-failed-v1.avsc', `${topicPrefix}order.failed-value`, 'new-subject'],
      ['order-placed-v1.avsc', placedSubject, 'registered'],
      ['order-placed-v2.avsc', placedSubject, 'compatible'],
    ]);
  });

  it('fails on a schema change the registry refuses, saying which field', async () => {
    const dir = await schemasDir(['order-placed-v1.avsc'], {
      file: 'order-placed-v2.avsc',
      text: await breakingPlacedV2(),
    });
    dirs.push(dir);
    const report = await runDeployCheck({
      client: h.client,
      registry,
      selection: selection(),
      schemasDir: dir,
      topicPrefix,
      skip: { replay: true, codegen: true },
    });
    expect(report.problems).toEqual([
      {
        type: 'SchemaIncompatible',
        target: `schemas/order-placed-v2.avsc → ${placedSubject}`,
        message: expect.stringMatching(/^not BACKWARD compatible with registered version 1: .*loyaltyTier/) as unknown,
      },
    ]);
  });

  it('the command prints one line per problem and a summary, and exits non-zero', async () => {
    const dir = await schemasDir(['order-placed-v1.avsc'], {
      file: 'order-placed-v2.avsc',
      text: await breakingPlacedV2(),
    });
    dirs.push(dir);
    const { code, stdout } = await runCli([
      'check',
      '--any-task-queue',
      '--query',
      query,
      '--workflows',
      UNPATCHED,
      '--schemas',
      dir,
      '--topic-prefix',
      topicPrefix,
    ]);
    const lines = stdout.trim().split('\n');
    const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(lines.filter((l) => l.startsWith('✖ ReplayFailed '))).toHaveLength(2);
    for (const id of [closed.workflowId, open.workflowId]) {
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^✖ ReplayFailed ${escape(id)} \\(run \\S+\\): DeterminismViolationError: `)),
      );
    }
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^✖ SchemaIncompatible schemas/order-placed-v2\\.avsc → ${escape(placedSubject)}: .*loyaltyTier`),
      ),
    );
    expect(lines.slice(-2)).toEqual([
      '2 histories replayed, 2 failed; 2 schemas: 1 registered, 0 new and compatible, 0 on new subjects, 1 refused; generated types current',
      '✖ deploy check failed: 3 problems',
    ]);
    expect(code).toBe(1);
  });
});
