import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { STACK_VERSIONS } from '../../src/config/stack-config';
import { javaBin } from '../../src/stack/component';
import { kafkaJvmArgs } from '../../src/stack/components/kafka';
import { endpoints, kafkaClient, stackConfig } from './stack';
import { waitUntil } from './wait-until';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * A Kafka Connect worker of a test's own (own group, storage topics and REST port) against the
 * shared Kafka and PostgreSQL, so the test can kill -9 it without touching the shared worker.
 */
export class PrivateConnect {
  private child: ChildProcess | undefined;
  readonly url: string;
  private constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async create(name: string): Promise<PrivateConnect> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    const worker = new PrivateConnect(name, dir, await freePort());
    fs.writeFileSync(
      path.join(dir, 'worker.properties'),
      [
        `bootstrap.servers=${endpoints.kafkaBrokers.join(',')}`,
        `group.id=${name}`,
        `listeners=http://127.0.0.1:${worker.port}`,
        'rest.advertised.host.name=127.0.0.1',
        `rest.advertised.port=${worker.port}`,
        `plugin.path=${path.join(stackConfig.cacheDir, `debezium-${STACK_VERSIONS.debezium}`)}`,
        'plugin.discovery=service_load',
        'key.converter=org.apache.kafka.connect.json.JsonConverter',
        'value.converter=org.apache.kafka.connect.json.JsonConverter',
        `config.storage.topic=${name}-configs`,
        `offset.storage.topic=${name}-offsets`,
        `status.storage.topic=${name}-status`,
        'config.storage.replication.factor=1',
        'offset.storage.replication.factor=1',
        'status.storage.replication.factor=1',
        'offset.flush.interval.ms=1000',
        '',
      ].join('\n'),
    );
    return worker;
  }

  /** Starts the JVM and waits until its REST API lists the Debezium plugin. */
  async start(): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'connect.log'), 'a');
    this.child = spawn(
      javaBin(),
      [
        ...kafkaJvmArgs(stackConfig, '512m'),
        'org.apache.kafka.connect.cli.ConnectDistributed',
        path.join(this.dir, 'worker.properties'),
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
    fs.closeSync(log);
    const child = this.child;
    await waitUntil(
      'private Connect to load the Debezium PostgreSQL connector',
      async () => {
        const res = await fetch(`${this.url}/connector-plugins`);
        return res.ok && (await res.text()).includes('PostgresConnector');
      },
      undefined,
      {
        timeoutMs: 180_000,
        intervalMs: 500,
        retryOnError: true, // not listening yet
        bail: () => {
          if (child.exitCode !== null) throw new Error(`private Connect exited early; see ${this.dir}/connect.log`);
        },
      },
    );
  }

  /** kill -9 of the worker's JVM: no shutdown hook, no offset flush, no slot release. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  }

  /**
   * Stops the JVM the way an operator or an orchestrator does (SIGTERM: tasks stop, offsets are
   * flushed, the slot is released) and keeps its storage topics, so start() resumes its connectors.
   */
  async halt(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
    const admin = kafkaClient().admin();
    await admin.connect();
    await admin
      .deleteTopics({ topics: ['configs', 'offsets', 'status'].map((t) => `${this.name}-${t}`) })
      .catch(() => undefined);
    await admin.disconnect();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
