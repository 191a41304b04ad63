import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { repoRoot } from '../../src/config/stack-config';
import { orderPlacedV2Avsc } from '../../src/events/generated/event-schemas';
import { DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB } from '../../src/provision/plan';
import { isPortOpen } from '../../src/stack/processes';
import type { StatusRow, UpResult } from '../../src/stack/stack';
import { processesMentioning } from '../support/live-processes';

jest.setTimeout(400_000);

const root = repoRoot();
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

/** Runs the stack CLI as a user would, in its own environment. */
function stackCli(args: string[], env: NodeJS.ProcessEnv) {
  const res = spawnSync(tsx, ['src/stack/cli.ts', ...args], { cwd: root, env, encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function pidOf(dataDir: string, name: string): number {
  return (JSON.parse(fs.readFileSync(path.join(dataDir, 'run', `${name}.pid.json`), 'utf8')) as { pid: number }).pid;
}

/** A second, private stack on other ports and its own data folder, sharing only the download cache. */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-lifecycle-'));
fs.chmodSync(dataDir, 0o755);
const ports = {
  KTS_PG_PORT: '25432',
  KTS_TEMPORAL_PORT: '27233',
  KTS_TEMPORAL_UI_PORT: '28233',
  KTS_KAFKA_PORT: '29092',
  KTS_KAFKA_CONTROLLER_PORT: '29093',
  KTS_REGISTRY_PORT: '28081',
  KTS_CONNECT_PORT: '28083',
};
const env = { ...process.env, KTS_DATA_DIR: dataDir, ...ports };

describe('stack lifecycle', () => {
  afterAll(() => {
    stackCli(['down'], env);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts every component, reuses healthy ones, replaces a dead one, and down leaves nothing behind', async () => {
    const first = stackCli(['up', '--json'], env);
    expect(first.stderr).not.toMatch(/✖/);
    expect(first.code).toBe(0);
    const started = (JSON.parse(first.stdout.trim().split('\n').pop() ?? '{}') as { results: UpResult[] }).results;
    expect(started.map((r) => [r.name, r.outcome])).toEqual([
      ['postgres', 'started'],
      ['temporal', 'started'],
      ['kafka', 'started'],
      ['registry', 'started'],
      ['connect', 'started'],
    ]);
    // Once Connect runs, `up` registers the outbox connector (after the migrations it needs).
    expect((JSON.parse(first.stdout.trim().split('\n').pop() ?? '{}') as { cdc?: { action: string } }).cdc).toEqual({
      name: 'kts-outbox',
      action: 'created',
    });
    // …and provisions the fresh stack: order.placed's versions in file order, so "latest" is v2.
    const firstJson = JSON.parse(first.stdout.trim().split('\n').pop() ?? '{}') as {
      provisioned?: { changed: number };
    };
    expect(firstJson.provisioned?.changed).toBeGreaterThan(0);
    const registryUrl = `http://127.0.0.1:${ports.KTS_REGISTRY_PORT}/apis/ccompat/v7`;
    const subject = await fetch(`${registryUrl}/subjects/order.placed-value/versions/latest`);
    const latest = (await subject.json()) as { version: number; schema: string };
    expect(latest.version).toBe(2);
    expect(JSON.parse(latest.schema)).toEqual(JSON.parse(JSON.stringify(orderPlacedV2Avsc)));
    const config = await fetch(`${registryUrl}/config/order.placed-value`);
    expect(((await config.json()) as { compatibilityLevel: string }).compatibilityLevel).toBe('BACKWARD');
    // …and bounds the WAL a stalled replication slot may keep (ALTER SYSTEM on a fresh cluster, whose default is unlimited).
    const pgAdmin = new pg.Client({
      connectionString: `postgres://postgres:${encodeURIComponent(process.env.KTS_PG_PASSWORD ?? 'postgres')}@127.0.0.1:${ports.KTS_PG_PORT}/postgres`,
    });
    await pgAdmin.connect();
    try {
      const walLimit = await pgAdmin.query<{ setting: string; unit: string; source: string }>(
        "SELECT setting, unit, source FROM pg_settings WHERE name = 'max_slot_wal_keep_size'",
      );
      expect(walLimit.rows).toEqual([
        { setting: String(DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB), unit: 'MB', source: 'configuration file' },
      ]);
      // The outbox connector's slot (made by its task as it starts) is bounded by it: PostgreSQL
      // reports how much more WAL it may keep.
      let safe: string | null | undefined;
      for (let i = 0; i < 120 && !safe; i++) {
        if (i) await new Promise((r) => setTimeout(r, 500));
        const slot = await pgAdmin.query<{ safe: string | null }>(
          "SELECT safe_wal_size::text AS safe FROM pg_replication_slots WHERE slot_name = 'kts_outbox'",
        );
        safe = slot.rows[0]?.safe;
      }
      expect(Number(safe)).toBeGreaterThan(0);
    } finally {
      await pgAdmin.end();
    }
    const names = started.map((r) => r.name);
    const pids = Object.fromEntries(names.map((n) => [n, pidOf(dataDir, n)]));

    const again = stackCli(['up', '--json'], env);
    expect(again.code).toBe(0);
    const againJson = JSON.parse(again.stdout.trim().split('\n').pop() ?? '{}') as {
      results: UpResult[];
      cdc?: { action: string };
      provisioned?: { changed: number };
    };
    // Provisioning again changes nothing.
    expect(againJson.provisioned?.changed).toBe(0);
    const reused = againJson.results;
    expect(againJson.cdc?.action).toBe('unchanged');
    expect(reused.every((r) => r.outcome === 'reused')).toBe(true);
    expect(Object.fromEntries(names.map((n) => [n, pidOf(dataDir, n)]))).toEqual(pids);

    // A crashed component is replaced; the healthy ones are left alone.
    process.kill(pids.registry as number, 'SIGKILL');
    const healed = stackCli(['up', '--json'], env);
    expect(healed.code).toBe(0);
    const outcomes = (JSON.parse(healed.stdout.trim().split('\n').pop() ?? '{}') as { results: UpResult[] }).results;
    expect(Object.fromEntries(outcomes.map((r) => [r.name, r.outcome]))).toEqual({
      postgres: 'reused',
      temporal: 'reused',
      kafka: 'reused',
      registry: 'restarted',
      connect: 'reused',
    });
    expect(pidOf(dataDir, 'registry')).not.toBe(pids.registry);

    const status = stackCli(['status', '--json'], env);
    expect(status.code).toBe(0);
    const rows = JSON.parse(status.stdout) as StatusRow[];
    expect(rows.map((r) => [r.name, r.healthy, r.ours])).toEqual(names.map((n) => [n, true, true]));
    expect(processesMentioning(dataDir).length).toBeGreaterThanOrEqual(names.length);

    const down = stackCli(['down'], env);
    expect(down.code).toBe(0);
    expect(processesMentioning(dataDir)).toEqual([]);
  });

  it('leaves every port closed after down', async () => {
    for (const port of Object.values(ports)) expect(await isPortOpen(Number(port))).toBe(false);
  });

  it('refuses, in one line, a port taken by something that is not the component', async () => {
    const squatter = net.createServer((socket) => socket.end('not postgres\n'));
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const res = stackCli(['up', 'postgres'], { ...env, KTS_PG_PORT: String(port) });
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toContain(`port ${port} for postgres is taken by another program`);
    } finally {
      squatter.close();
    }
  });

  it('names a missing prerequisite and what to do, in one line', () => {
    // A PATH with the shell and node but no java or mvn.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-path-'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const res = stackCli(['up', 'kafka'], { ...env, PATH: bin, JAVA_HOME: '' });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/'java' is not on PATH \(kafka needs it\): install a JDK 17\+/);
  });

  it('rejects a bad setting before doing anything', () => {
    const res = stackCli(['status'], { ...env, KTS_KAFKA_PORT: 'ninety' });
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toMatch(/^✖ invalid stack settings: KTS_KAFKA_PORT/);
  });
});
