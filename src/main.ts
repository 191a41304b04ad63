/**
 * The main job (`npm start`): bring up the local stack, run every role in this process, send a demo
 * batch of orders designed to take every path, follow them live to their end, and summarise. The
 * terminal shows only progress, the live counters and the summary; the app's JSON log goes to a
 * file under the stack's data folder.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Client } from '@temporalio/client';
import pino from 'pino';

import type { RunningApp } from './app/run-app';
import { APP_ROLES } from './app/run-app';
import { runProcess } from './app/run-process';
import { connectTemporal, createKafka, createRegistryClient } from './config/clients';
import type { StackConfig } from './config/stack-config';
import { stackEndpoints } from './config/stack-config';
import { DEFAULT_DEMO_PLAN, seedDemoStock, sendDemoBatch } from './demo/demo-orders';
import { formatSummary, summaryMatchesPlan, topicRecordCount, watchDemo } from './demo/watch-outcomes';
import { EventCodec } from './events/codec';
import { deadLetterTopic } from './events/topics';
import { stackDown, stackUp } from './stack/stack';

const argv = process.argv.slice(2);
const opts = { demo: !argv.includes('--no-demo'), exit: argv.includes('--exit') };
const say = (line: string) => process.stdout.write(`${line}\n`);
let stopServers = false;
let logPath = '';
let stackConfig: StackConfig | undefined;

/** Resolves when the user presses `key` (or Ctrl-C, which raw mode delivers as a byte). */
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

void runProcess(
  {
    service: 'kts-main',
    usage: 'npm start [-- --no-demo] [-- --exit]',
    description:
      'The main job: bring up the local stack, run every role in this process (provisioning, the orchestrator and\n' +
      'the four service workers, event store, loyalty service, outbox cleaner, Kafka ingress, Orders HTTP API), send a demo batch of\n' +
      'orders (declined, cancelled, out of stock, duplicated, malformed among them), follow them live, summarise.',
    roles: APP_ROLES,
    metrics: 'main',
    flags: [
      '--no-demo  start everything but send no demo orders',
      '--exit     stop the app after the summary instead of waiting for a key (the servers keep running)',
    ],
    // Cancels must land while the card is still being charged: give the simulated gateway some latency.
    envDefaults: { KTS_GATEWAY_LATENCY_MIN_MS: '800', KTS_GATEWAY_LATENCY_MAX_MS: '1500' },
    logDestination: (settings) => {
      logPath = path.join(settings.stack.dataDir, 'logs', 'app.log');
      fs.mkdirSync(path.dirname(logPath), { recursive: true });
      return pino.destination({ dest: logPath, append: true, sync: false });
    },
    onStep: (text) => say(`… ${text}`),
    prepare: async (settings) => {
      say('== 1/4 local stack');
      stackConfig = settings.stack;
      await stackUp(settings.stack);
      say('\n== 2/4 app: provisioning, workers, event store, loyalty, outbox cleaner, ingress, HTTP API');
      say(`… the app's log: ${logPath}`);
    },
    afterStart: async ({ running, settings, metricsUrl, stopRequested }) => {
      const app = running as RunningApp;
      const names = settings.common.names;
      const topics = { placed: names.topics.orderPlaced, cancelled: names.topics.orderCancelled };
      const uiUrl = stackEndpoints(settings.stack).temporalUiUrl;
      say(`… Prometheus metrics at ${metricsUrl} (live view: npm run status)`);
      const connection = await connectTemporal(settings.temporal);
      const client = new Client({ connection, namespace: settings.temporal.namespace });
      const kafka = createKafka(settings.kafka, 'main-demo');
      let ok = true;
      try {
        if (opts.demo) {
          say('\n== 3/4 demo orders → Kafka order.placed');
          const inventory = app.pools.inventory;
          if (!inventory) throw new Error('the inventory worker opened no pool');
          await seedDemoStock(inventory);
          const dlqBefore = await topicRecordCount(kafka, deadLetterTopic(topics.placed));
          const codec = new EventCodec(createRegistryClient(settings.registry));
          const batch = await sendDemoBatch(kafka, codec, DEFAULT_DEMO_PLAN, topics);
          say(
            `sent ${batch.orders.length} orders (${DEFAULT_DEMO_PLAN.declined} with a card that declines, ` +
              `${DEFAULT_DEMO_PLAN.outOfStock} out of stock, ${DEFAULT_DEMO_PLAN.cancelled} cancelled mid-saga), ` +
              `${batch.duplicated.length} duplicates and ${batch.malformed.length} malformed records`,
          );
          say('\n== 4/4 following every order to its end');
          const loyalty = app.loyalty;
          const summary = await watchDemo(
            client,
            kafka,
            batch,
            dlqBefore,
            (s) => {
              const ended = s.outcomes.filter((o) => o.state);
              const confirmed = ended.filter((o) => o.state === 'CONFIRMED').length;
              const points = s.loyalty
                ? ` · loyalty points ${s.loyalty.pointsAwarded} awarded, ${s.loyalty.pointsRevoked} revoked`
                : '';
              const line =
                `sagas started ${s.sagasStarted}/${s.outcomes.length} · ended ${ended.length} ` +
                `(confirmed ${confirmed}, compensated ${ended.length - confirmed}) · dead-lettered ${s.deadLettered}/${s.deadLetterExpected}` +
                points;
              if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
              else say(line);
            },
            undefined,
            topics.placed,
            loyalty && ((ids) => loyalty.ledger.totalsFor(ids)),
          );
          if (process.stdout.isTTY) say('');
          say(formatSummary(summary, uiUrl));
          ok = summaryMatchesPlan(summary);
          say(ok ? '\n✔ every order ended as designed' : '\n✖ some orders did not end as designed (see above)');
        } else {
          say('\n(no demo: --no-demo)');
        }
      } finally {
        await connection.close();
      }
      say(`\nTemporal Web UI:    ${uiUrl}`);
      say(`Prometheus metrics: ${metricsUrl} (live view: npm run status)`);
      say(`Orders HTTP API:    ${app.api?.url ?? '-'} (OpenAPI: ${app.api?.url ?? '-'}/openapi.json)`);
      say(`The app's log:      ${logPath}`);
      if (opts.exit || !process.stdin.isTTY) return ok ? 0 : 1;
      say('\nThe system keeps running. Place orders from another terminal:');
      say('  npm run orders -- place --count 20 --rate 5        (Avro events straight onto order.placed)');
      say(
        `  curl -X POST ${app.api?.url ?? ''}/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: k1' -d @order.json`,
      );
      say('  npm run orders -- history <orderId>                 (its events, from the event store)');
      say('Press q to stop the app and the servers.');
      await Promise.race([waitForKey('q'), stopRequested]);
      say('stopping…');
      stopServers = true;
      return ok ? 0 : 1;
    },
    afterStop: async () => {
      if (stopServers && stackConfig) await stackDown(stackConfig, say);
    },
  },
  argv,
);
