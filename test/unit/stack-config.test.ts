import path from 'node:path';

import {
  kafkaNodes,
  loadStackConfig,
  repoRoot,
  stackEndpoints,
  stackTopicReplication,
} from '../../src/config/stack-config';

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
});
