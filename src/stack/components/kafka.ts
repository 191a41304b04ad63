import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Kafka, logLevel } from 'kafkajs';

import type { KafkaNode, StackConfig } from '../../config/stack-config';
import { kafkaNodes, repoRoot, STACK_VERSIONS, stackEndpoints, stackTopicReplication } from '../../config/stack-config';
import type { Component } from '../component';
import { componentDir, JAVA_PREREQ, javaBin, logFile, MVN_PREREQ, pidFile } from '../component';
import { cached, mavenArgs, mavenProgress, run, StackError } from '../downloads';
import type { PidRecord } from '../processes';
import { isPortOpen, readPidRecord, spawnDetached, stopProcess } from '../processes';
import type { SecureListeners } from '../secure';
import { KAFKA_SCRAM_MECHANISM, scramFormatArgs, scramJaasConfig } from '../secure';

/** One classpath (Maven Central jars) that runs the broker, the storage tool and Kafka Connect. */
export function kafkaLibDir(cacheDir: string): string {
  return path.join(cacheDir, `kafka-${STACK_VERSIONS.kafka}`, 'libs');
}

export function javaDir(): string {
  return path.join(repoRoot(), 'src', 'stack', 'java');
}

/** Installs the Kafka classpath once; Connect shares it. */
export async function installKafkaLibs(cfg: StackConfig, progress: (t: string) => void): Promise<void> {
  await cached(path.dirname(kafkaLibDir(cfg.cacheDir)), async (tmp) => {
    progress('resolving Kafka jars with Maven');
    await run(
      'mvn',
      [
        ...mavenArgs(cfg.cacheDir),
        '-f',
        path.join(javaDir(), 'pom.xml'),
        `-Dkafka.version=${STACK_VERSIONS.kafka}`,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${path.join(tmp, 'libs')}`,
      ],
      { onLine: mavenProgress(progress) },
    );
  });
}

/** JVM arguments shared by the broker, its storage tool and Connect. */
export function kafkaJvmArgs(cfg: StackConfig, heap: string): string[] {
  return [
    `-Xmx${heap}`,
    '-Xms128m',
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(javaDir(), 'log4j2.yaml')}`,
    '-cp',
    `${kafkaLibDir(cfg.cacheDir)}/*`,
  ];
}

/**
 * The client listener: PLAINTEXT by default; with secure listeners, SASL_SSL only (SCRAM-SHA-512 over
 * TLS), so a plaintext or unauthenticated client is refused on the one port clients use. The
 * controller listener stays plaintext: only the nodes themselves speak to it.
 */
function listenerProperties(
  cfg: StackConfig,
  node: KafkaNode,
  dir: string,
  secure: SecureListeners | undefined,
): string[] {
  const h = cfg.host;
  if (!secure) {
    return [
      `listeners=PLAINTEXT://${h}:${node.port},CONTROLLER://${h}:${node.controllerPort}`,
      `advertised.listeners=PLAINTEXT://${h}:${node.port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    ];
  }
  return [
    `listeners=SASL_SSL://${h}:${node.port},CONTROLLER://${h}:${node.controllerPort}`,
    `advertised.listeners=SASL_SSL://${h}:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=SASL_SSL',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
    `sasl.enabled.mechanisms=${KAFKA_SCRAM_MECHANISM}`,
    `sasl.mechanism.inter.broker.protocol=${KAFKA_SCRAM_MECHANISM}`,
    `listener.name.sasl_ssl.${KAFKA_SCRAM_MECHANISM.toLowerCase()}.sasl.jaas.config=${scramJaasConfig(secure.kafka.broker)}`,
    // PEM stores (KIP-651): no keytool step, the test's openssl output is used as it is.
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${keystorePem(dir)}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${secure.tls.caFile}`,
    // The broker's inter-broker client checks the certificate names this host, as any client would.
    'ssl.endpoint.identification.algorithm=https',
  ];
}

/** Kafka's PEM keystore is one file: the private key followed by the certificate chain. */
function keystorePem(dir: string): string {
  return path.join(dir, 'keystore.pem');
}

function writeKeystorePem(dir: string, secure: SecureListeners): void {
  const pem = [fs.readFileSync(secure.tls.keyFile, 'utf8').trim(), fs.readFileSync(secure.tls.certFile, 'utf8').trim()];
  fs.writeFileSync(keystorePem(dir), `${pem.join('\n')}\n`, { mode: 0o600 });
}

/** Where one node keeps its configuration, data, log and pid record. */
export interface KafkaNodeFiles {
  dir: string;
  logDir: string;
  props: string;
  log: string;
  pid: string;
}

/**
 * A single node keeps the layout the stack always had (kafka/data, kafka.log, kafka.pid.json), so an
 * existing dev stack is reused as it is. A cluster's nodes live in kafka/node-<n>, apart from it:
 * switching between one and three nodes never mixes two clusters' logs. Node 1 keeps the
 * component's log and pid file, which `up`, `status` and `logs kafka` read.
 */
export function kafkaNodeFiles(cfg: StackConfig, nodeId: number): KafkaNodeFiles {
  const base = componentDir(cfg, 'kafka');
  const dir = (cfg.kafkaBrokers ?? 1) > 1 ? path.join(base, `node-${nodeId}`) : base;
  return {
    dir,
    logDir: path.join(dir, 'data'),
    props: path.join(dir, 'server.properties'),
    log: nodeId === 1 ? logFile(cfg, 'kafka') : path.join(cfg.dataDir, 'logs', `kafka-${nodeId}.log`),
    pid: nodeId === 1 ? pidFile(cfg, 'kafka') : path.join(cfg.dataDir, 'run', `kafka-${nodeId}.pid.json`),
  };
}

/** Pid files of nodes 2 and up that a cluster of this data folder recorded (whatever the current settings say). */
function extraNodePidFiles(cfg: StackConfig): string[] {
  const runDir = path.dirname(pidFile(cfg, 'kafka'));
  if (!fs.existsSync(runDir)) return [];
  return fs
    .readdirSync(runDir)
    .filter((f) => /^kafka-\d+\.pid\.json$/.test(f))
    .map((f) => path.join(runDir, f));
}

/**
 * Replication settings of the broker: the internal topics (consumer offsets, transactions, share
 * groups) and topics created without explicit settings get every replica the cluster can give, up to
 * 3, and with 3 a write needs 2 in sync, so one node may die without losing an acknowledged record.
 */
function replicationProperties(cfg: StackConfig): string[] {
  const { replicationFactor: rf, minInsyncReplicas: isr } = stackTopicReplication(cfg);
  return [
    `offsets.topic.replication.factor=${rf}`,
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${isr}`,
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${isr}`,
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${isr}`,
  ];
}

function serverProperties(cfg: StackConfig, node: KafkaNode, files: KafkaNodeFiles, secure?: SecureListeners): string {
  const h = cfg.host;
  const nodes = kafkaNodes(cfg);
  // One node: a dynamic quorum bootstrapped by `format --standalone`, as the stack always ran. A
  // cluster: a static quorum of every node, the simplest KRaft setup whose voters are known up front.
  const quorum =
    nodes.length === 1
      ? `controller.quorum.bootstrap.servers=${h}:${node.controllerPort}`
      : `controller.quorum.voters=${nodes.map((n) => `${n.id}@${h}:${n.controllerPort}`).join(',')}`;
  return [
    '# Written by the stack tool on every start; edit src/stack/components/kafka.ts instead.',
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    quorum,
    ...listenerProperties(cfg, node, files.dir, secure),
    `log.dirs=${files.logDir}`,
    ...replicationProperties(cfg),
    // A restarted node gets its preferred leaderships back within 30 s (default 5 min), so after a
    // failure the load spreads again soon, and drills see leadership move back as well as away.
    ...(nodes.length > 1 ? ['leader.imbalance.check.interval.seconds=30'] : []),
    'auto.create.topics.enable=true',
    'num.partitions=1',
    // Tests create many short-lived groups; don't make each first join wait 3 s.
    'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n');
}

/** The cluster id the nodes share: from a node formatted earlier, else a new one. */
function clusterIdOf(cfg: StackConfig): string {
  for (const n of kafkaNodes(cfg)) {
    const meta = path.join(kafkaNodeFiles(cfg, n.id).logDir, 'meta.properties');
    const id = fs.existsSync(meta) ? /^cluster\.id=(.+)$/m.exec(fs.readFileSync(meta, 'utf8'))?.[1] : undefined;
    if (id) return id.trim();
  }
  // The 16 random bytes Kafka expects, base64url without padding.
  return crypto.randomBytes(16).toString('base64url');
}

/** Writes a node's configuration and formats its storage on first use. */
async function prepareNode(
  cfg: StackConfig,
  node: KafkaNode,
  clusterId: string,
  progress: (t: string) => void,
  secure: SecureListeners | undefined,
): Promise<KafkaNodeFiles> {
  const files = kafkaNodeFiles(cfg, node.id);
  fs.mkdirSync(files.dir, { recursive: true });
  if (secure) writeKeystorePem(files.dir, secure);
  // Holds the broker's SCRAM password when secure: readable by its owner only.
  fs.writeFileSync(files.props, serverProperties(cfg, node, files, secure), { mode: 0o600 });
  if (!fs.existsSync(path.join(files.logDir, 'meta.properties'))) {
    const single = kafkaNodes(cfg).length === 1;
    progress(single ? 'formatting KRaft storage' : `formatting KRaft storage of node ${node.id}`);
    await run(javaBin(), [
      ...kafkaJvmArgs(cfg, '256m'),
      'kafka.tools.StorageTool',
      'format',
      // A single node bootstraps a dynamic quorum of itself; a cluster's voters are in its properties.
      ...(single ? ['--standalone'] : []),
      // '=' form: a base64url id may start with '-', which would otherwise parse as an option.
      `--cluster-id=${clusterId}`,
      // SCRAM users go into the bootstrap metadata: the broker must log in to itself at once.
      ...(secure ? scramFormatArgs(secure) : []),
      '-c',
      files.props,
    ]);
  }
  return files;
}

/** JVM heap of one node: a cluster's three share the machine. */
function nodeHeap(cfg: StackConfig): string {
  return (cfg.kafkaBrokers ?? 1) > 1 ? '512m' : '768m';
}

/**
 * Starts one node of the stack's Kafka (its storage must be formatted: {@link kafka}'s start does
 * that). Exported for failure drills, which kill -9 a node and start it again.
 */
export function startKafkaNode(cfg: StackConfig, nodeId: number): PidRecord {
  const files = kafkaNodeFiles(cfg, nodeId);
  if (!fs.existsSync(path.join(files.logDir, 'meta.properties'))) {
    throw new StackError(`Kafka node ${nodeId} has no formatted storage in ${files.logDir}: run 'stack up' first`);
  }
  return spawnDetached({
    command: javaBin(),
    args: [...kafkaJvmArgs(cfg, nodeHeap(cfg)), 'kafka.Kafka', files.props],
    cwd: files.dir,
    logFile: files.log,
    pidFile: files.pid,
  });
}

export const kafka: Component = {
  name: 'kafka',
  dependsOn: [],
  prerequisites: [JAVA_PREREQ, MVN_PREREQ],
  ports: (cfg) => [cfg.ports.kafka, cfg.ports.kafkaController],
  address: (cfg) => stackEndpoints(cfg).kafkaBrokers.join(','),
  // Three JVMs starting at once on two cores take longer than one.
  startupTimeoutMs: 120_000,

  install: ({ cfg, progress }) => installKafkaLibs(cfg, progress),

  async start({ cfg, progress, secure }) {
    const nodes = kafkaNodes(cfg);
    // Nodes of an earlier cluster in this data folder (ours, by pid record) would hold the ports.
    for (const file of extraNodePidFiles(cfg)) {
      const rec = readPidRecord(file);
      if (rec) await stopProcess(rec);
      fs.rmSync(file, { force: true });
    }
    for (const n of nodes.slice(1)) {
      for (const port of [n.port, n.controllerPort]) {
        if (await isPortOpen(port, cfg.host)) {
          throw new StackError(
            `port ${port} for Kafka node ${n.id} is taken by another program: stop it or set KTS_KAFKA_PORT / KTS_KAFKA_CONTROLLER_PORT`,
          );
        }
      }
    }
    const clusterId = clusterIdOf(cfg);
    // Formatting is a JVM start each: side by side.
    await Promise.all(nodes.map((n) => prepareNode(cfg, n, clusterId, progress, secure)));
    if (nodes.length > 1) progress(`starting ${nodes.length} nodes`);
    // Node 1's record is the component's; the others are found by their pid files (see extraPidFiles).
    const records = nodes.map((n) => startKafkaNode(cfg, n.id));
    return records[0]!;
  },

  extraPidFiles: (cfg) => extraNodePidFiles(cfg),

  async health(cfg) {
    const expected = kafkaNodes(cfg).length;
    const client = new Kafka({
      clientId: 'stack-health',
      brokers: stackEndpoints(cfg).kafkaBrokers,
      connectionTimeout: 2000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });
    const admin = client.admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      // Every node must serve: a cluster missing one would take writes without its replication.
      if (cluster.brokers.length < expected) {
        throw new Error(`${cluster.brokers.length} of ${expected} Kafka brokers up`);
      }
      const { replicationFactor, minInsyncReplicas } = stackTopicReplication(cfg);
      const replication = expected > 1 ? `, replication ${replicationFactor}, min ISR ${minInsyncReplicas}` : '';
      return `Kafka ${STACK_VERSIONS.kafka} (KRaft), ${cluster.brokers.length} broker(s), controller ${cluster.controller ?? '?'}${replication}`;
    } finally {
      await admin.disconnect();
    }
  },
};
