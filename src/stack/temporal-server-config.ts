/**
 * What the full Temporal server needs from us, shared by the stack's `KTS_STACK_TEMPORAL=server` mode
 * and the private servers of tests and benchmarks: its ports, its static config (written from code:
 * JSON is YAML), its dynamic config, and its two PostgreSQL databases set up by its own SQL tool.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pg from 'pg';

import type { TemporalServerPorts } from '../config/stack-config';
import { run } from './downloads';
import { temporalSqlToolBin } from './temporal-server-build';

export interface TemporalServerConfigInput {
  ports: TemporalServerPorts;
  /** Loopback address every service binds to and advertises. */
  host: string;
  /** PostgreSQL superuser URL of the cluster holding both databases. */
  postgres: URL;
  databases: { main: string; visibility: string };
  historyShards: number;
  dynamicConfigFile: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** The server's static config: PostgreSQL persistence and visibility, one node, no global namespaces. */
export function temporalServerConfig(i: TemporalServerConfigInput): unknown {
  const p = i.ports;
  const sql = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${i.postgres.hostname}:${i.postgres.port || '5432'}`,
      connectProtocol: 'tcp',
      user: decodeURIComponent(i.postgres.username),
      password: decodeURIComponent(i.postgres.password),
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, extra = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: i.host, ...extra },
  });
  const frontendAddress = `${i.host}:${p.frontend}`;
  return {
    log: { stdout: true, level: i.logLevel ?? 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: i.historyShards,
      datastores: { default: sql(i.databases.main, 20), visibility: sql(i.databases.visibility, 10) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: i.host } },
    services: {
      frontend: service(p.frontend, p.frontendMembership, { httpPort: p.frontendHttp }),
      history: service(p.history, p.historyMembership),
      matching: service(p.matching, p.matchingMembership),
      worker: service(p.worker, p.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: frontendAddress },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: i.dynamicConfigFile, pollInterval: '10s' },
  };
}

/**
 * Dynamic config: the worker-versioning APIs the saga's deployment support uses (the dev server turns
 * them on too).
 */
export const TEMPORAL_SERVER_DYNAMIC_CONFIG = {
  'frontend.workerVersioningDataAPIs': [{ value: true }],
  'frontend.workerVersioningWorkflowAPIs': [{ value: true }],
  'frontend.workerVersioningRuleAPIs': [{ value: true }],
  'system.enableDeploymentVersions': [{ value: true }],
  'system.enableDeployments': [{ value: true }],
};

/**
 * Writes the server's config and dynamic config into `dir` (JSON is YAML: written from code, no
 * template to drift from the settings) and returns the config file's path for `--config-file`.
 */
export function writeTemporalServerConfig(
  dir: string,
  input: Omit<TemporalServerConfigInput, 'dynamicConfigFile'>,
): string {
  const configFile = path.join(dir, 'config.yaml');
  const dynamicConfigFile = path.join(dir, 'dynamic-config.yaml');
  fs.writeFileSync(configFile, JSON.stringify(temporalServerConfig({ ...input, dynamicConfigFile }), null, 2));
  fs.writeFileSync(dynamicConfigFile, JSON.stringify(TEMPORAL_SERVER_DYNAMIC_CONFIG, null, 2));
  return configFile;
}

/** How long namespace `default` keeps a closed workflow on a full server we start (the dev server's default). */
const DEFAULT_NAMESPACE_RETENTION_MS = 24 * 3600 * 1000;

/**
 * Registers namespace `default` on a fresh full server (which has none, unlike the dev server);
 * one that exists already is left as it is. The services serve it once their caches refresh.
 */
export async function registerDefaultNamespace(connection: Connection): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace: 'default',
      workflowExecutionRetentionPeriod: msToTs(DEFAULT_NAMESPACE_RETENTION_MS),
    });
  } catch (err) {
    if (!/already exists|AlreadyExists/i.test((err as Error).message)) throw err;
  }
}

/** Runs the server's SQL tool against one database; the password goes through the environment, not argv. */
export function temporalSqlTool(cacheDir: string, postgres: URL, db: string, ...args: string[]): Promise<void> {
  const env = {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: postgres.hostname,
    SQL_PORT: postgres.port || '5432',
    SQL_USER: decodeURIComponent(postgres.username),
    SQL_PASSWORD: decodeURIComponent(postgres.password),
  };
  return run(temporalSqlToolBin(cacheDir), ['--db', db, ...args], { env });
}

/**
 * Brings both databases to the server's current schema with its own SQL tool. Idempotent: a missing
 * database is created and initialised; an existing one only gets the versions it lacks, so the
 * stack's server keeps its workflows across restarts and upgrades its schema with the binary.
 * `fresh` drops both first (private servers of tests and benchmarks).
 */
export async function setupTemporalDatabases(o: {
  cacheDir: string;
  postgres: URL;
  databases: { main: string; visibility: string };
  fresh?: boolean;
  progress?: (line: string) => void;
}): Promise<void> {
  const client = new pg.Client({ connectionString: o.postgres.href });
  await client.connect();
  let existing: Set<string>;
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
    existing = new Set(rows.map((r) => r.datname));
  } finally {
    await client.end();
  }
  for (const [db, schema] of [
    [o.databases.main, 'postgresql/v12/temporal'],
    [o.databases.visibility, 'postgresql/v12/visibility'],
  ] as const) {
    if (o.fresh && existing.has(db)) {
      await temporalSqlTool(o.cacheDir, o.postgres, db, 'drop-database', '--force');
      existing.delete(db);
    }
    if (!existing.has(db)) {
      await temporalSqlTool(o.cacheDir, o.postgres, db, 'create-database');
      await temporalSqlTool(o.cacheDir, o.postgres, db, 'setup-schema', '-v', '0.0');
    }
    await temporalSqlTool(o.cacheDir, o.postgres, db, 'update-schema', '--schema-name', schema);
    o.progress?.(`database ${db}: ${schema} schema current`);
  }
}
