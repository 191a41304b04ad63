import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Connection, WorkflowClient } from '@temporalio/client';

import { repoRoot } from '../../src/config/stack-config';
import type { UpResult } from '../../src/stack/stack';

// A first run on a fresh machine builds the server with go (minutes); `npm test` builds it before the suites.
jest.setTimeout(900_000);

const root = repoRoot();
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

/** The stack CLI as a user runs it, in its own environment; the last line of --json output parsed. */
function up(env: NodeJS.ProcessEnv, ...args: string[]): UpResult[] {
  const res = spawnSync(tsx, ['src/stack/cli.ts', 'up', 'temporal', '--json', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`stack up failed (${res.status}): ${res.stderr}`);
  return (JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { results: UpResult[] }).results;
}

/** A private stack (its own data folder and ports) holding only PostgreSQL and Temporal. */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-stack-server-'));
fs.chmodSync(dataDir, 0o755);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  KTS_DATA_DIR: dataDir,
  KTS_PG_PORT: '26432',
  KTS_TEMPORAL_PORT: '26233',
  KTS_TEMPORAL_UI_PORT: '26833',
  KTS_KAFKA_PORT: '26092',
  KTS_KAFKA_CONTROLLER_PORT: '26093',
  KTS_REGISTRY_PORT: '26081',
  KTS_CONNECT_PORT: '26083',
};
delete env.KTS_STACK_TEMPORAL;
const address = '127.0.0.1:26233';

async function withClient<T>(fn: (connection: Connection, client: WorkflowClient) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(connection, new WorkflowClient({ connection }));
  } finally {
    await connection.close();
  }
}

afterAll(() => {
  spawnSync(tsx, ['src/stack/cli.ts', 'down'], { cwd: root, env, encoding: 'utf8' });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('stack up --temporal server', () => {
  it('runs the full server on the stack PostgreSQL, keeps its workflows across a restart, and gives way to the dev server', async () => {
    const first = up(env, '--temporal', 'server');
    expect(first.map((r) => [r.name, r.outcome])).toEqual([
      ['postgres', 'started'],
      ['temporal', 'started'],
    ]);
    expect(first[1]?.detail).toMatch(/^full server 1\.32\.2 on postgres12, namespace default ready$/);
    expect(first[1]?.address).toBe(`${address} (full server on PostgreSQL, no Web UI)`);

    const workflowId = `stack-server-${Date.now()}`;
    await withClient(async (connection, client) => {
      const info = await connection.workflowService.getClusterInfo({});
      expect([info.persistenceStore, info.visibilityStore]).toEqual(['postgres12', 'postgres12']);
      // No worker polls this queue: the workflow just waits, RUNNING, in the server's database.
      await client.start('noWorkerEverRunsThis', { taskQueue: 'stack-server-test', workflowId });
    });

    // Settings alone pick the mode too; the healthy server is reused as it is.
    const reused = up({ ...env, KTS_STACK_TEMPORAL: 'server' });
    expect(reused.map((r) => [r.name, r.outcome])).toEqual([
      ['postgres', 'reused'],
      ['temporal', 'reused'],
    ]);

    // A restart keeps the history: it lives in PostgreSQL (databases temporal and temporal_visibility).
    spawnSync(tsx, ['src/stack/cli.ts', 'down'], { cwd: root, env, encoding: 'utf8' });
    const restarted = up(env, '--temporal', 'server');
    expect(restarted.map((r) => r.outcome)).toEqual(['started', 'started']);
    await withClient(async (_connection, client) => {
      const handle = client.getHandle(workflowId);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      await handle.terminate('test over');
      expect((await handle.describe()).status.name).toBe('TERMINATED');
    });

    // Back to the default: the full server is not a healthy dev server (no Web UI), so `up` replaces it.
    const dev = up(env);
    expect(dev.map((r) => [r.name, r.outcome])).toEqual([['temporal', 'restarted']]);
    expect(dev[0]?.detail).toMatch(/Web UI up/);
    await withClient(async (connection) => {
      expect((await connection.workflowService.getClusterInfo({})).persistenceStore).toBe('sqlite');
    });
  });
});
