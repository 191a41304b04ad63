import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { Connection } from '@temporalio/client';

import { loadStackConfig } from '../config/stack-config';
import { temporalCliPath } from './components/temporal';
import type { TemporalDevOverrides } from './temporal-dev-flags';
import { temporalDevFlags, tuningWith } from './temporal-dev-flags';

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

/** How a private server is set up; every field is optional. */
export interface PrivateTemporalOptions {
  /** The stack's download cache holding the CLI binary (default: the stack's own). */
  readonly cacheDir?: string;
  /**
   * Values that differ from the shared tuning (src/stack/temporal-dev-flags.ts): benchmarks compare one
   * flag at a time this way. Tests leave it unset, so they run on the server the stack runs.
   */
  readonly tuning?: TemporalDevOverrides;
}

/**
 * A Temporal dev server of our own (same CLI binary and flags as the stack), persisted to a SQLite file
 * so it can be stopped and started again with its workflows intact. The shared stack's server is never
 * touched. Tests use it to kill a server, benchmarks to measure on a server nobody else loads.
 *
 * The crash tests SIGKILL this server and expect every acknowledged write back after the restart. The
 * shared tuning gives that: in WAL mode with synchronous=normal a commit has been written to the log file
 * (the OS's page cache) before the call returns, and a killed process cannot lose what the kernel holds;
 * only a power loss could. So no override is needed here (it used synchronous=off, which also skips the
 * checkpoint fsyncs, for no measurable gain: BENCHMARKS.md, "Temporal dev server flags").
 */
export class PrivateTemporal {
  private child: ChildProcess | undefined;
  readonly dbFile: string;

  private constructor(
    readonly port: number,
    readonly uiPort: number,
    private readonly cacheDir: string,
    private readonly overrides: TemporalDevOverrides,
  ) {
    const dir = path.join(os.tmpdir(), `kts-private-temporal-${port}`);
    // A leftover from an earlier run on the same port would carry its workflows into this one.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.dbFile = path.join(dir, 'temporal.db');
  }

  /** On two free ports, with the stack's own CLI binary and, unless `options.tuning` says otherwise, flags. */
  static async create(options: PrivateTemporalOptions = {}): Promise<PrivateTemporal> {
    const cacheDir = options.cacheDir ?? loadStackConfig().cacheDir;
    return new PrivateTemporal(await freePort(), await freePort(), cacheDir, options.tuning ?? {});
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once it answers a namespace call. */
  async start(): Promise<void> {
    const bin = temporalCliPath(this.cacheDir);
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port)];
    args.push('--ui-port', String(this.uiPort), '--headless', '--db-filename', this.dbFile, '--log-level', 'error');
    args.push(...temporalDevFlags(tuningWith(this.overrides)));
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
