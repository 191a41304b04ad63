/**
 * The main job: bring up the stack, start the app (workers, ingress), send a demo batch of orders
 * designed to take every path, follow them live to their end, and summarise.
 */
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import { Kafka, logLevel } from 'kafkajs';

import { startApp } from './app/run-app';
import { loadStackConfig, stackEndpoints } from './config/stack-config';
import { DEFAULT_DEMO_PLAN, seedDemoStock, sendDemoBatch } from './demo/demo-orders';
import { formatSummary, summaryMatchesPlan, topicRecordCount, watchDemo } from './demo/watch-outcomes';
import { EventCodec } from './events/codec';
import { TOPICS, deadLetterTopic } from './events/topics';
import { RegistryClient } from './kafka/registry-client';
import { createLogger } from './observability/logger';
import { loadMetricsPort, serveMetrics } from './observability/metrics';
import { initTracing } from './observability/tracing';
import { stackDown, stackUp } from './stack/stack';

interface MainOptions {
  demo: boolean;
  exit: boolean;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(opts: MainOptions): Promise<number> {
  // First, so the workers, the ingress and the demo producer all share the one tracer provider.
  initTracing('kts-main');
  const cfg = loadStackConfig();
  const endpoints = stackEndpoints(cfg);
  const metricsPort = loadMetricsPort('main');
  say('== 1/4 local stack');
  await stackUp(cfg);

  say('\n== 2/4 app: migrations, outbox connector, workers, ingress, event store, HTTP API');
  // Warnings and errors only, so the live counters stay readable; LOG_LEVEL=info shows every step.
  process.env.LOG_LEVEL ??= 'warn';
  const logger = createLogger('main');
  // Cancels must land while the card is still being charged: give the simulated gateway some latency.
  process.env.KTS_GATEWAY_LATENCY_MIN_MS ??= '800';
  process.env.KTS_GATEWAY_LATENCY_MAX_MS ??= '1500';
  const app = await startApp(logger, (step) => say(`… ${step}`));
  const metricsServer = await serveMetrics(app.metrics.registry, metricsPort).catch(async (err: unknown) => {
    await app.stop();
    throw err;
  });
  const metricsUrl = `http://127.0.0.1:${metricsServer.port}/metrics`;
  say(`… Prometheus metrics at ${metricsUrl} (live view: npm run status)`);
  const connection = await Connection.connect({ address: endpoints.temporalAddress });
  const client = new Client({ connection });
  const kafka = new Kafka({ clientId: 'main-demo', brokers: endpoints.kafkaBrokers, logLevel: logLevel.NOTHING });
  let ok = true;
  try {
    if (opts.demo) {
      say('\n== 3/4 demo orders → Kafka order.placed');
      await seedDemoStock(app.pools.inventory);
      const dlqBefore = await topicRecordCount(kafka, deadLetterTopic(TOPICS.orderPlaced));
      const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
      const batch = await sendDemoBatch(kafka, codec, DEFAULT_DEMO_PLAN);
      say(
        `sent ${batch.orders.length} orders (${DEFAULT_DEMO_PLAN.declined} with a card that declines, ` +
          `${DEFAULT_DEMO_PLAN.outOfStock} out of stock, ${DEFAULT_DEMO_PLAN.cancelled} cancelled mid-saga), ` +
          `${batch.duplicated.length} duplicates and ${batch.malformed.length} malformed records`,
      );
      say('\n== 4/4 following every order to its end');
      const summary = await watchDemo(client, kafka, batch, dlqBefore, (s) => {
        const ended = s.outcomes.filter((o) => o.state);
        const confirmed = ended.filter((o) => o.state === 'CONFIRMED').length;
        const line =
          `sagas started ${s.sagasStarted}/${s.outcomes.length} · ended ${ended.length} ` +
          `(confirmed ${confirmed}, compensated ${ended.length - confirmed}) · dead-lettered ${s.deadLettered}/${s.deadLetterExpected}`;
        if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
        else say(line);
      });
      if (process.stdout.isTTY) say('');
      say(formatSummary(summary, endpoints.temporalUiUrl));
      ok = summaryMatchesPlan(summary);
      say(ok ? '\n✔ every order ended as designed' : '\n✖ some orders did not end as designed (see above)');
    } else {
      say('\n(no demo: --no-demo)');
    }
    say(`\nTemporal Web UI: ${endpoints.temporalUiUrl}`);
    say(`Prometheus metrics: ${metricsUrl} (live view: npm run status)`);
    say(`Orders HTTP API:    ${app.api.url} (OpenAPI: ${app.api.url}/openapi.json)`);
    if (opts.exit || !process.stdin.isTTY) return ok ? 0 : 1;
    say('\nThe system keeps running. Place orders from another terminal:');
    say('  npm run orders -- place --count 20 --rate 5        (Avro events straight onto order.placed)');
    say(
      `  curl -X POST ${app.api.url}/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: k1' -d @order.json`,
    );
    say('  npm run orders -- history <orderId>                 (its events, from the event store)');
    say('Press q to stop the app and the servers.');
    await waitForKey('q');
    say('stopping…');
    await app.stop();
    await stackDown(cfg, say);
    return ok ? 0 : 1;
  } finally {
    await app.stop();
    await connection.close();
    await metricsServer.close();
  }
}

/** Resolves when the user presses `key` (or Ctrl-C). */
function waitForKey(key: string): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('data', (data: Buffer) => {
      const pressed = data.toString();
      if (pressed === key || pressed === '\u0003') {
        process.stdin.setRawMode(false);
        process.stdin.pause();
        resolve();
      }
    });
  });
}

new Command('kafka-temporal-saga')
  .description(
    'The main job: bring up the local stack, start the workers and the Kafka ingress, send a demo batch of\n' +
      'orders (declined, cancelled, out of stock, duplicated, malformed among them), follow them live, summarise.',
  )
  .option('--no-demo', 'start everything but send no demo orders')
  .option('--exit', 'stop the app after the summary instead of waiting for a key (the servers keep running)')
  .action(async (opts: MainOptions) => {
    process.exitCode = await main(opts);
  })
  .parseAsync()
  .catch((err: unknown) => {
    console.error(`✖ ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
