import { Command } from 'commander';

import { loadStackConfig, stackEndpoints } from './config/stack-config';
import { stackUp } from './stack/stack';

/**
 * The main job. Today it brings the local stack up and says where everything is; the workers, the
 * ingress and the demo orders join it as they land.
 */
async function main(): Promise<void> {
  new Command('kafka-temporal-saga')
    .description('Bring up the local stack (PostgreSQL, Temporal, Kafka, schema registry, Kafka Connect + Debezium).')
    .parse();
  const cfg = loadStackConfig();
  const t0 = Date.now();
  const results = await stackUp(cfg);
  const e = stackEndpoints(cfg);
  console.log(`\nEverything is up (${((Date.now() - t0) / 1000).toFixed(1)}s):\n`);
  for (const r of results) console.log(`  ${r.name.padEnd(9)} ${r.address.padEnd(58)} ${r.detail}`);
  console.log(`\n  Temporal Web UI   ${e.temporalUiUrl}`);
  console.log(`  Kafka bootstrap   ${e.kafkaBrokers.join(',')}`);
  console.log(`  Schema registry   ${e.registryUrl}`);
  console.log(`  Kafka Connect     ${e.connectUrl}/connectors`);
  console.log(`\nThe servers keep running. Status: npm run stack -- status   Stop: npm run stack -- down`);
}

main().catch((err: unknown) => {
  console.error(`✖ ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
