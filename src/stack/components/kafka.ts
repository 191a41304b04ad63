import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Kafka, logLevel } from 'kafkajs';

import type { StackConfig } from '../../config/stack-config';
import { STACK_VERSIONS, repoRoot, stackEndpoints } from '../../config/stack-config';
import type { Component } from '../component';
import { JAVA_PREREQ, MVN_PREREQ, componentDir, javaBin, logFile, pidFile } from '../component';
import { cached, mavenArgs, mavenProgress, run } from '../downloads';
import { spawnDetached } from '../processes';
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
 * controller listener stays plaintext: only the node itself speaks to it.
 */
function listenerProperties(cfg: StackConfig, dir: string, secure: SecureListeners | undefined): string[] {
  const h = cfg.host;
  if (!secure) {
    return [
      `listeners=PLAINTEXT://${h}:${cfg.ports.kafka},CONTROLLER://${h}:${cfg.ports.kafkaController}`,
      `advertised.listeners=PLAINTEXT://${h}:${cfg.ports.kafka}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    ];
  }
  return [
    `listeners=SASL_SSL://${h}:${cfg.ports.kafka},CONTROLLER://${h}:${cfg.ports.kafkaController}`,
    `advertised.listeners=SASL_SSL://${h}:${cfg.ports.kafka}`,
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

function serverProperties(cfg: StackConfig, logDir: string, secure?: SecureListeners): string {
  const h = cfg.host;
  return [
    '# Written by the stack tool on every start; edit src/stack/components/kafka.ts instead.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=${h}:${cfg.ports.kafkaController}`,
    ...listenerProperties(cfg, path.dirname(logDir), secure),
    `log.dirs=${logDir}`,
    // A single broker: every internal topic has one replica.
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'auto.create.topics.enable=true',
    'num.partitions=1',
    // Tests create many short-lived groups; don't make each first join wait 3 s.
    'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n');
}

export const kafka: Component = {
  name: 'kafka',
  dependsOn: [],
  prerequisites: [JAVA_PREREQ, MVN_PREREQ],
  ports: (cfg) => [cfg.ports.kafka, cfg.ports.kafkaController],
  address: (cfg) => stackEndpoints(cfg).kafkaBrokers.join(','),
  startupTimeoutMs: 90_000,

  install: ({ cfg, progress }) => installKafkaLibs(cfg, progress),

  async start({ cfg, progress, secure }) {
    const dir = componentDir(cfg, 'kafka');
    const logDir = path.join(dir, 'data');
    const props = path.join(dir, 'server.properties');
    fs.mkdirSync(dir, { recursive: true });
    if (secure) writeKeystorePem(dir, secure);
    // Holds the broker's SCRAM password when secure: readable by its owner only.
    fs.writeFileSync(props, serverProperties(cfg, logDir, secure), { mode: 0o600 });
    if (!fs.existsSync(path.join(logDir, 'meta.properties'))) {
      progress('formatting KRaft storage');
      // The cluster id is the 16 random bytes Kafka expects, base64url without padding.
      const clusterId = crypto.randomBytes(16).toString('base64url');
      await run(javaBin(), [
        ...kafkaJvmArgs(cfg, '256m'),
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        // '=' form: a base64url id may start with '-', which would otherwise parse as an option.
        `--cluster-id=${clusterId}`,
        // SCRAM users go into the bootstrap metadata: the broker must log in to itself at once.
        ...(secure ? scramFormatArgs(secure) : []),
        '-c',
        props,
      ]);
    }
    return spawnDetached({
      command: javaBin(),
      args: [...kafkaJvmArgs(cfg, '768m'), 'kafka.Kafka', props],
      cwd: dir,
      logFile: logFile(cfg, 'kafka'),
      pidFile: pidFile(cfg, 'kafka'),
    });
  },

  async health(cfg) {
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
      return `Kafka ${STACK_VERSIONS.kafka} (KRaft), ${cluster.brokers.length} broker(s), controller ${cluster.controller ?? '?'}`;
    } finally {
      await admin.disconnect();
    }
  },
};
