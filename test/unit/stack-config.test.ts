import path from 'node:path';

import {
  kafkaNodes,
  loadStackConfig,
  repoRoot,
  stackEndpoints,
  stackTemporalServerPorts,
  stackTopicReplication,
} from '../../src/config/stack-config';
import { temporalServerConfig } from '../../src/stack/temporal-server-config';

describe('stack settings', () => {
  it('defaults every server to 127.0.0.1 on its usual port, data inside the checkout', () => {
    const cfg = loadStackConfig({});
    expect(cfg.ports).toEqual({
      postgres: 5432,
      temporal: 7233,
      temporalUi: 8233,
      kafka: 9092,
      kafkaController: 9093,
      registry: 8081,
      connect: 8083,
    });
    expect(cfg.dataDir).toBe(path.join(repoRoot(), '.stack'));
    expect(stackEndpoints(cfg).temporalUiUrl).toBe('http://127.0.0.1:8233');
  });

  it('takes ports and folders from the environment', () => {
    const cfg = loadStackConfig({ KTS_KAFKA_PORT: '19092', KTS_DATA_DIR: '/tmp/x', KTS_CACHE_DIR: '/tmp/c' });
    expect(cfg.ports.kafka).toBe(19092);
    expect(cfg.dataDir).toBe('/tmp/x');
    expect(cfg.cacheDir).toBe('/tmp/c');
    expect(stackEndpoints(cfg).kafkaBrokers).toEqual(['127.0.0.1:19092']);
  });

  it('fails fast with a readable message naming the bad variable', () => {
    expect(() => loadStackConfig({ KTS_PG_PORT: 'five' })).toThrow(/invalid stack settings: KTS_PG_PORT/);
    expect(() => loadStackConfig({ KTS_CONNECT_PORT: '70000' })).toThrow(/KTS_CONNECT_PORT/);
  });

  it('runs Kafka as one node, or three on the ports above the first', () => {
    expect(kafkaNodes(loadStackConfig({}))).toEqual([{ id: 1, port: 9092, controllerPort: 9093 }]);
    const three = loadStackConfig({ KTS_STACK_KAFKA_BROKERS: '3' });
    expect(kafkaNodes(three)).toEqual([
      { id: 1, port: 9092, controllerPort: 9093 },
      { id: 2, port: 9094, controllerPort: 9095 },
      { id: 3, port: 9096, controllerPort: 9097 },
    ]);
    expect(stackEndpoints(three).kafkaBrokers).toEqual(['127.0.0.1:9092', '127.0.0.1:9094', '127.0.0.1:9096']);
    expect(stackTopicReplication(three)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
    expect(stackTopicReplication(loadStackConfig({}))).toEqual({ replicationFactor: 1, minInsyncReplicas: 1 });
    expect(() => loadStackConfig({ KTS_STACK_KAFKA_BROKERS: '2' })).toThrow(/KTS_STACK_KAFKA_BROKERS: must be 1/);
    // Node 2's controller would take the registry's port.
    expect(() => loadStackConfig({ KTS_STACK_KAFKA_BROKERS: '3', KTS_REGISTRY_PORT: '9095' })).toThrow(
      /kafka node 2 controller and registry both use port 9095|registry and kafka node 2 controller/,
    );
  });

  it('refuses two components on one port', () => {
    expect(() => loadStackConfig({ KTS_REGISTRY_PORT: '9092' })).toThrow(
      /registry and kafka both use port 9092|kafka and registry/,
    );
  });

  it("runs the dev server by default, or the full server with Temporal's own port layout around the frontend", () => {
    expect(loadStackConfig({}).temporalEngine).toBe('dev');
    const cfg = loadStackConfig({ KTS_STACK_TEMPORAL: 'server' });
    expect(cfg.temporalEngine).toBe('server');
    expect(stackTemporalServerPorts(cfg.ports.temporal)).toEqual({
      frontend: 7233,
      frontendHttp: 7243,
      frontendMembership: 6933,
      history: 7234,
      historyMembership: 6934,
      matching: 7235,
      matchingMembership: 6935,
      worker: 7239,
      workerMembership: 6939,
    });
    expect(() => loadStackConfig({ KTS_STACK_TEMPORAL: 'cluster' })).toThrow(/KTS_STACK_TEMPORAL/);
  });

  it("refuses full-server ports that collide with another server's or that membership cannot store", () => {
    // The dev server never listens on 7234, so the UI may sit there; the full server's history does.
    expect(loadStackConfig({ KTS_TEMPORAL_UI_PORT: '7234' }).ports.temporalUi).toBe(7234);
    expect(() => loadStackConfig({ KTS_STACK_TEMPORAL: 'server', KTS_TEMPORAL_UI_PORT: '7234' })).toThrow(
      /temporal server history and temporalUi both use port 7234|temporalUi and temporal server history both use port 7234/,
    );
    expect(() => loadStackConfig({ KTS_STACK_TEMPORAL: 'server', KTS_TEMPORAL_PORT: '40000' })).toThrow(
      /frontendMembership port at 39700 .*choose a KTS_TEMPORAL_PORT from 301 to 33061/,
    );
  });

  it('configures the full server on PostgreSQL, every service bound to the stack host', () => {
    const config = temporalServerConfig({
      ports: stackTemporalServerPorts(7233),
      host: '127.0.0.2',
      postgres: new URL('postgres://postgres:p%40ss@127.0.0.2:5433/postgres'),
      databases: { main: 'temporal', visibility: 'temporal_visibility' },
      historyShards: 4,
      dynamicConfigFile: '/tmp/dc.yaml',
    }) as {
      persistence: { numHistoryShards: number; datastores: Record<string, { sql: Record<string, unknown> }> };
      services: Record<string, { rpc: { grpcPort: number; membershipPort: number; bindOnIP: string } }>;
    };
    expect(config.persistence.numHistoryShards).toBe(4);
    expect(config.persistence.datastores.default?.sql).toMatchObject({
      pluginName: 'postgres12',
      databaseName: 'temporal',
      connectAddr: '127.0.0.2:5433',
      password: 'p@ss',
    });
    expect(config.persistence.datastores.visibility?.sql.databaseName).toBe('temporal_visibility');
    expect(Object.values(config.services).map((s) => [s.rpc.grpcPort, s.rpc.membershipPort, s.rpc.bindOnIP])).toEqual([
      [7233, 6933, '127.0.0.2'],
      [7234, 6934, '127.0.0.2'],
      [7235, 6935, '127.0.0.2'],
      [7239, 6939, '127.0.0.2'],
    ]);
  });
});
