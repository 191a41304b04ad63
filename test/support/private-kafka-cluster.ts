/**
 * A private three-node Kafka cluster for failure drills, started by the stack tool's own code path
 * (`stack up kafka` with KTS_STACK_KAFKA_BROKERS=3) on its own loopback address and data folder, so
 * a drill can kill -9 one of its brokers without going near the shared stack's Kafka on 127.0.0.1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';

import type { Admin } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';

import type { StackConfig } from '../../src/config/stack-config';
import { kafkaNodes, loadStackConfig, stackEndpoints } from '../../src/config/stack-config';
import { kafkaNodeFiles, startKafkaNode } from '../../src/stack/components/kafka';
import type { PidRecord } from '../../src/stack/processes';
import { isOurProcessAlive, isPortOpen, readPidRecord } from '../../src/stack/processes';
import { ProgressBoard } from '../../src/stack/progress';
import { stackDown, stackUp } from '../../src/stack/stack';
import { processesMentioning } from './live-processes';
import { stackConfig } from './stack';

/** Nobody else's servers bind here: the shared stack owns 127.0.0.1, the secure stack 127.0.0.2. */
export const DRILL_KAFKA_HOST = '127.0.0.3';

export class PrivateKafkaCluster {
  private constructor(
    readonly dir: string,
    readonly cfg: StackConfig,
  ) {}

  /** Bootstrap addresses of every node. */
  get brokers(): string[] {
    return stackEndpoints(this.cfg).kafkaBrokers;
  }

  /** Chooses the ports (refusing ones in use) and a temporary data folder. Nothing runs yet. */
  static async create(basePort = 29092): Promise<PrivateKafkaCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-drill-kafka-'));
    const cfg = loadStackConfig({
      KTS_STACK_HOST: DRILL_KAFKA_HOST,
      KTS_DATA_DIR: dir,
      KTS_CACHE_DIR: stackConfig.cacheDir,
      KTS_STACK_KAFKA_BROKERS: '3',
      KTS_KAFKA_PORT: String(basePort),
      KTS_KAFKA_CONTROLLER_PORT: String(basePort + 1),
    });
    for (const n of kafkaNodes(cfg)) {
      for (const port of [n.port, n.controllerPort]) {
        if (await isPortOpen(port, DRILL_KAFKA_HOST)) {
          fs.rmSync(dir, { recursive: true, force: true });
          throw new Error(`${DRILL_KAFKA_HOST}:${port} is in use: a drill cluster left running? Stop it first`);
        }
      }
    }
    return new PrivateKafkaCluster(dir, cfg);
  }

  /** `stack up kafka` for this folder: formats and starts the three nodes, waits until all serve. */
  async start(): Promise<void> {
    const quiet = new PassThrough();
    quiet.resume();
    await stackUp(this.cfg, ['kafka'], new ProgressBoard(quiet as unknown as NodeJS.WriteStream));
  }

  client(clientId = 'drill'): Kafka {
    return new Kafka({ clientId, brokers: this.brokers, logLevel: logLevel.NOTHING });
  }

  async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.client('drill-admin').admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  }

  private record(nodeId: number): PidRecord | undefined {
    return readPidRecord(kafkaNodeFiles(this.cfg, nodeId).pid);
  }

  /** kill -9 of one node's JVM: no controlled shutdown, no leadership hand-over, no flush. */
  async kill9(nodeId: number): Promise<void> {
    const rec = this.record(nodeId);
    if (!rec || !isOurProcessAlive(rec)) throw new Error(`Kafka node ${nodeId} is not running`);
    process.kill(-rec.pid, 'SIGKILL');
    while (isOurProcessAlive(rec)) await new Promise((r) => setTimeout(r, 50));
  }

  /** Starts a node again on its existing storage, as an operator restarting the dead broker would. */
  restart(nodeId: number): void {
    startKafkaNode(this.cfg, nodeId);
  }

  /** `stack down` for this folder, then removes it; fails if any process still names the folder. */
  async stop(): Promise<void> {
    await stackDown(this.cfg, () => undefined);
    const left = processesMentioning(this.dir);
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (left.length) throw new Error(`drill Kafka processes still running after stop:\n${left.join('\n')}`);
  }
}
