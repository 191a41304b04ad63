import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { Connection } from '@temporalio/client';

import type { TemporalServerPorts } from '../config/stack-config';
import { loadStackConfig, MAX_MEMBERSHIP_PORT, stackEndpoints } from '../config/stack-config';
import { INDEXED_VALUE_TYPES } from '../provision/steps';
import { ORDER_SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import { freePort } from './private-temporal';
import { ensureTemporalServerBuild, temporalServerBin } from './temporal-server-build';
import {
  registerDefaultNamespace,
  setupTemporalDatabases,
  temporalSqlTool,
  writeTemporalServerConfig,
} from './temporal-server-config';

/**
 * History shards of the private server. Fixed for a cluster's life (it cannot change without a new
 * database), and the unit of history parallelism: 4 is plenty for one node on a 2-core machine,
 * where each shard's owner loop and task queues cost CPU even when idle (production clusters use
 * 512–4096 to spread over many hosts).
 */
export const PRIVATE_SERVER_HISTORY_SHARDS = 4;
/** A free loopback port drawn at random from [20000, limit). */
async function freePortBelow(limit: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * (limit - 20000));
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
    if (attempt > 100) throw new Error(`no free port below ${limit}`);
  }
}

export interface PrivateTemporalServerOptions {
  /** PostgreSQL superuser URL (creates the server's two databases). Default: the stack's PostgreSQL. */
  postgresUrl?: string;
  /** The stack's download cache (the built server lives there). */
  cacheDir?: string;
  /** One line per start-up phase; default: stderr. */
  progress?: (line: string) => void;
}

/**
 * A full Temporal server (frontend, history, matching, worker services in one process) on PostgreSQL
 * persistence and PostgreSQL visibility, as users run it in production rather than the dev server's
 * SQLite. Same shape as PrivateTemporal: create(), address, start(), stop(). Its two databases
 * (temporal_<port>, temporal_visibility_<port>) are set up by the server's own SQL tool on start and
 * dropped on stop; the shared stack's Temporal is never touched.
 */
export class PrivateTemporalServer {
  private child: ChildProcess | undefined;
  readonly dir: string;
  readonly databases: { main: string; visibility: string };
  private readonly pg: URL;

  private constructor(
    private readonly ports: TemporalServerPorts,
    private readonly cacheDir: string,
    postgresUrl: string,
    private readonly progress: (line: string) => void,
  ) {
    const port = ports.frontend;
    this.dir = path.join(os.tmpdir(), `kts-private-temporal-server-${port}`);
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true });
    this.databases = { main: `temporal_${port}`, visibility: `temporal_visibility_${port}` };
    this.pg = new URL(postgresUrl);
  }

  /** On free loopback ports (frontend gRPC and HTTP, and each service's gRPC and membership port). */
  static async create(opts: PrivateTemporalServerOptions = {}): Promise<PrivateTemporalServer> {
    const stack = loadStackConfig();
    const taken: number[] = [];
    // One at a time: a probe closes before returning, so parallel calls could repeat a port. Membership
    // ports go into a smallint column of cluster_membership, so they must lie below 32768, under the
    // kernel's ephemeral range where freePort draws from.
    const draw = async (membership: boolean): Promise<number> => {
      let p = membership ? await freePortBelow(MAX_MEMBERSHIP_PORT + 1) : await freePort();
      while (taken.includes(p)) p = membership ? await freePortBelow(MAX_MEMBERSHIP_PORT + 1) : await freePort();
      taken.push(p);
      return p;
    };
    const ports: TemporalServerPorts = {
      frontend: await draw(false),
      frontendHttp: await draw(false),
      frontendMembership: await draw(true),
      history: await draw(false),
      historyMembership: await draw(true),
      matching: await draw(false),
      matchingMembership: await draw(true),
      worker: await draw(false),
      workerMembership: await draw(true),
    };
    const progress = opts.progress ?? ((line: string) => process.stderr.write(`[temporal-server] ${line}\n`));
    return new PrivateTemporalServer(
      ports,
      opts.cacheDir ?? stack.cacheDir,
      opts.postgresUrl ?? stackEndpoints(stack).postgresUrl,
      progress,
    );
  }

  get address(): string {
    return `127.0.0.1:${this.ports.frontend}`;
  }

  /** Builds the server once (cached), sets up its databases, starts it and registers `default`. */
  async start(): Promise<void> {
    const t0 = Date.now();
    const phase = (what: string) => this.progress(`${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const built = await ensureTemporalServerBuild(this.cacheDir, (l) => this.progress(l));
    phase(built === 'hit' ? 'server binary cached' : 'server binary built');
    await setupTemporalDatabases({
      cacheDir: this.cacheDir,
      postgres: this.pg,
      databases: this.databases,
      fresh: true,
      progress: phase,
    });
    const configFile = writeTemporalServerConfig(this.dir, {
      ports: this.ports,
      host: '127.0.0.1',
      postgres: this.pg,
      databases: this.databases,
      historyShards: PRIVATE_SERVER_HISTORY_SHARDS,
    });
    const log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    this.child = spawn(temporalServerBin(this.cacheDir), ['--config-file', configFile, '--allow-no-auth', 'start'], {
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const exited = new Promise<never>((_, reject) =>
      this.child?.once('exit', (code) =>
        reject(new Error(`temporal-server exited (${code}) during start-up; see ${this.dir}/server.log`)),
      ),
    );
    exited.catch(() => {});
    const connection = await Promise.race([this.connectWhenUp(), exited]);
    try {
      phase(`frontend up on ${this.address}`);
      await this.registerNamespaceWithSearchAttributes(connection);
      phase('namespace default registered with the saga search attributes');
      await Promise.race([this.waitSearchAttributesVisible(connection), exited]);
      phase('ready');
    } finally {
      await connection.close();
    }
  }

  /** Stops the server (SIGTERM, SIGKILL after 20 s) and drops its two databases. */
  async stop(opts: { keepDatabases?: boolean } = {}): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    if (!opts.keepDatabases) {
      await temporalSqlTool(this.cacheDir, this.pg, this.databases.main, 'drop-database', '--force');
      await temporalSqlTool(this.cacheDir, this.pg, this.databases.visibility, 'drop-database', '--force');
    }
  }

  private async connectWhenUp(): Promise<Connection> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        const connection = await Connection.connect({ address: this.address, connectTimeout: 1000 });
        await connection.workflowService.getSystemInfo({});
        return connection;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`temporal-server did not come up: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async registerNamespaceWithSearchAttributes(connection: Connection): Promise<void> {
    await registerDefaultNamespace(connection);
    // The namespace registry refreshes every 2 s: retry until the operator service knows it.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await connection.operatorService.addSearchAttributes({
          namespace: 'default',
          searchAttributes: Object.fromEntries(
            ORDER_SEARCH_ATTRIBUTES.map((k) => [k.name, INDEXED_VALUE_TYPES[k.type] ?? 0]),
          ),
        });
        return;
      } catch (err) {
        if (/already exists/i.test((err as Error).message)) return;
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * The frontend validates a visibility query against its cached namespace: once a query naming every
   * saga search attribute passes, sagas can start with them (history's cache follows within 2 s, and a
   * workflow task that fails meanwhile is retried).
   */
  private async waitSearchAttributesVisible(connection: Connection): Promise<void> {
    const query = ORDER_SEARCH_ATTRIBUTES.map((k) => `${k.name} IS NULL`).join(' AND ');
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await connection.workflowService.countWorkflowExecutions({ namespace: 'default', query });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`search attributes not visible: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}
