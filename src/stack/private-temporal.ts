import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { Connection } from '@temporalio/client';

import { loadStackConfig } from '../config/stack-config';
import { temporalCliPath } from './components/temporal';

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A Temporal dev server of our own (same CLI binary as the stack), persisted to a SQLite file so it
 * can be stopped and started again with its workflows intact. The shared stack's server is never
 * touched. Tests use it to kill a server, benchmarks to measure on a server nobody else loads.
 */
export class PrivateTemporal {
  private child: ChildProcess | undefined;
  readonly dbFile: string;

  private constructor(
    readonly port: number,
    readonly uiPort: number,
    private readonly cacheDir: string,
  ) {
    const dir = path.join(os.tmpdir(), `kts-private-temporal-${port}`);
    // A leftover from an earlier run on the same port would carry its workflows into this one.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.dbFile = path.join(dir, 'temporal.db');
  }

  /** On two free ports, with the stack's own CLI binary (from the cache of `cacheDir`, default the stack's). */
  static async create(cacheDir = loadStackConfig().cacheDir): Promise<PrivateTemporal> {
    return new PrivateTemporal(await freePort(), await freePort(), cacheDir);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once it answers a namespace call. */
  async start(): Promise<void> {
    const bin = temporalCliPath(this.cacheDir);
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port)];
    args.push('--ui-port', String(this.uiPort), '--headless', '--db-filename', this.dbFile, '--log-level', 'error');
    // WAL without fsync: writes still reach the OS before each call returns, so they survive a
    // SIGKILL of the server (all these tests do to it), and starts get about 3x faster on a busy disk.
    args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=off');
    this.child = spawn(bin, args, { stdio: 'ignore' });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const connection = await Connection.connect({ address: this.address, connectTimeout: 1000 });
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        await connection.close();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`private Temporal did not come up: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  /** Stops the server process (SIGKILL, as a crash would) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
