import fs from 'node:fs';
import path from 'node:path';

import type { StackConfig } from '../../config/stack-config';
import { STACK_VERSIONS, stackEndpoints, stackTopicReplication } from '../../config/stack-config';
import type { Component } from '../component';
import { componentDir, getJson, JAVA_PREREQ, javaBin, logFile, MVN_PREREQ, pidFile } from '../component';
import { cached, fetchMavenArtifact, untar } from '../downloads';
import { spawnDetached } from '../processes';
import type { SecureListeners } from '../secure';
import { kafkaClientSecurityProperties } from '../secure';
import { installKafkaLibs, kafkaJvmArgs } from './kafka';

export const DEBEZIUM_POSTGRES_CLASS = 'io.debezium.connector.postgresql.PostgresConnector';

/** Connect's plugin.path: a folder holding one sub-folder per plugin. */
function pluginPath(cacheDir: string): string {
  return path.join(cacheDir, `debezium-${STACK_VERSIONS.debezium}`);
}

/**
 * With secure listeners, every Kafka client of the worker speaks SASL_SSL: the worker's own (group
 * membership, its storage topics), and the producers, consumers and admin clients it gives connectors.
 */
function securityProperties(secure: SecureListeners | undefined): string[] {
  if (!secure) return [];
  return ['', 'producer.', 'consumer.', 'admin.'].flatMap((prefix) =>
    kafkaClientSecurityProperties(secure, secure.kafka.connect, prefix),
  );
}

function workerProperties(cfg: StackConfig, secure?: SecureListeners): string {
  const rf = stackTopicReplication(cfg).replicationFactor;
  return [
    '# Written by the stack tool on every start; edit src/stack/components/connect.ts instead.',
    `bootstrap.servers=${stackEndpoints(cfg).kafkaBrokers.join(',')}`,
    'group.id=kts-connect',
    `listeners=http://${cfg.host}:${cfg.ports.connect}`,
    `rest.advertised.host.name=${cfg.host}`,
    `rest.advertised.port=${cfg.ports.connect}`,
    `plugin.path=${pluginPath(cfg.cacheDir)}`,
    // Find plugins through their service manifests instead of scanning every jar: ~9 s and ~400 MB less.
    'plugin.discovery=service_load',
    'key.converter=org.apache.kafka.connect.json.JsonConverter',
    'value.converter=org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable=false',
    'value.converter.schemas.enable=false',
    // Connect keeps its own state in Kafka topics, replicated as the stack's Kafka allows (1, or 3).
    'config.storage.topic=_kts-connect-configs',
    'offset.storage.topic=_kts-connect-offsets',
    'status.storage.topic=_kts-connect-status',
    `config.storage.replication.factor=${rf}`,
    `offset.storage.replication.factor=${rf}`,
    `status.storage.replication.factor=${rf}`,
    // Source connectors' producers (Debezium's): idempotent, acknowledged by every in-sync replica.
    // Kafka's defaults already, stated because losing or reordering an outbox event is what CDC must not do.
    'producer.enable.idempotence=true',
    'producer.acks=all',
    // Flush source offsets often so a killed worker re-sends little.
    'offset.flush.interval.ms=1000',
    ...securityProperties(secure),
    '',
  ].join('\n');
}

export const connect: Component = {
  name: 'connect',
  dependsOn: ['kafka'],
  prerequisites: [JAVA_PREREQ, MVN_PREREQ],
  ports: (cfg) => [cfg.ports.connect],
  address: (cfg) => stackEndpoints(cfg).connectUrl,
  startupTimeoutMs: 120_000,

  async install({ cfg, progress }) {
    await installKafkaLibs(cfg, progress);
    await cached(pluginPath(cfg.cacheDir), async (tmp) => {
      const archive = await fetchMavenArtifact(
        cfg.cacheDir,
        {
          group: 'io.debezium',
          artifact: 'debezium-connector-postgres',
          version: STACK_VERSIONS.debezium,
          type: 'tar.gz',
          classifier: 'plugin',
        },
        progress,
      );
      progress('unpacking the Debezium plugin');
      await untar(archive, tmp);
    });
  },

  start({ cfg, secure }) {
    const dir = componentDir(cfg, 'connect');
    const props = path.join(dir, 'connect-distributed.properties');
    fs.mkdirSync(dir, { recursive: true });
    // The file holds Connect's SCRAM password when secure: readable by its owner only.
    fs.writeFileSync(props, workerProperties(cfg, secure), { mode: 0o600 });
    return spawnDetached({
      command: javaBin(),
      args: [...kafkaJvmArgs(cfg, '512m'), 'org.apache.kafka.connect.cli.ConnectDistributed', props],
      cwd: dir,
      logFile: logFile(cfg, 'connect'),
      pidFile: pidFile(cfg, 'connect'),
    });
  },

  async health(cfg) {
    const plugins = (await getJson(`${stackEndpoints(cfg).connectUrl}/connector-plugins`)) as {
      class: string;
      version?: string;
    }[];
    const dbz = plugins.find((p) => p.class === DEBEZIUM_POSTGRES_CLASS);
    if (!dbz) throw new Error('Connect is up but the Debezium PostgreSQL connector is not among its plugins');
    return `Connect with Debezium PostgreSQL ${dbz.version ?? ''}`.trim();
  },
};
