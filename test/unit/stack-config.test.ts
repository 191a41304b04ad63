import path from 'node:path';

import { loadStackConfig, repoRoot, stackEndpoints } from '../../src/config/stack-config';

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

  it('refuses two components on one port', () => {
    expect(() => loadStackConfig({ KTS_REGISTRY_PORT: '9092' })).toThrow(
      /registry and kafka both use port 9092|kafka and registry/,
    );
  });
});
