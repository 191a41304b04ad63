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

function serverProperties(cfg: StackConfig, logDir: string): string {
  const h = cfg.host;
  return [
    '# Written by the stack tool on every start; edit src/stack/components/kafka.ts instead.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=${h}:${cfg.ports.kafkaController}`,
    `listeners=PLAINTEXT://${h}:${cfg.ports.kafka},CONTROLLER://${h}:${cfg.ports.kafkaController}`,
    `advertised.listeners=PLAINTEXT://${h}:${cfg.ports.kafka}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
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

  async start({ cfg, progress }) {
    const dir = componentDir(cfg, 'kafka');
    const logDir = path.join(dir, 'data');
    const props = path.join(dir, 'server.properties');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(props, serverProperties(cfg, logDir));
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
