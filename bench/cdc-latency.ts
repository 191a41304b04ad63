/**
 * `npx tsx bench/cdc-latency.ts [rates...]`: outbox commit → Kafka latency through Debezium, and the
 * highest write rate at which CDC lag stays bounded. Uses its own connector, slot and topic prefix
 * on the shared stack (cleaned up afterwards). Latency = time the record is consumed minus time the
 * writing transaction's COMMIT returned, both on this process's clock.
 */
import { randomUUID } from 'node:crypto';

import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

import { ensureOutboxConnector, removeOutboxConnector } from '../src/cdc/outbox-connector';
import { connectorOptionsFor, scopeNames } from '../src/config/scope';
import { loadSettings } from '../src/config/settings';
import { loadStackConfig, stackEndpoints } from '../src/config/stack-config';
import { EventCodec } from '../src/events/codec';
import { TOPICS } from '../src/events/topics';
import { RegistryClient } from '../src/kafka/registry-client';
import { OUTBOX_HEADERS } from '../src/outbox/outbox-constants';
import { OutboxWriter } from '../src/outbox/outbox-writer';
import { orderConfirmed } from '../src/services/orders/orders-events';

const cfg = loadStackConfig();
const ep = stackEndpoints(cfg);
const provision = loadSettings(['provision'], process.env).roles.provision;
const target = { adminUrl: provision.adminUrl, connectUrl: provision.connectUrl };
const SECONDS = 15;
const rates = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function main(): Promise<void> {
  const prefix = `bench_cdc_${Date.now().toString(36)}`;
  // The connector of a deployment scoped to `prefix`: its own slot, publication and topics.
  const options = connectorOptionsFor(scopeNames(prefix));
  await ensureOutboxConnector(target, options);
  const writer = new OutboxWriter({ codec: new EventCodec(new RegistryClient(ep.registryUrl)), topicPrefix: prefix });
  const topic = writer.destination(TOPICS.orderConfirmed);
  const db = new pg.Pool({ connectionString: ep.postgresUrl, max: 16 });
  const committedAt = new Map<string, number>();
  // First time each record was consumed. Kept apart from commit times: under load a record can be
  // consumed before the writer's COMMIT continuation has even run.
  const seenAt = new Map<string, number>();
  const kafka = new Kafka({ clientId: prefix, brokers: ep.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `${prefix}.bench`, maxWaitTimeInMs: 20 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ message }) => {
      const id = message.headers?.[OUTBOX_HEADERS.eventId]?.toString();
      if (id && !seenAt.has(id)) seenAt.set(id, Date.now());
      return Promise.resolve();
    },
  });
  const write = async () => {
    const orderId = `ord-${randomUUID()}`;
    const confirmed = orderConfirmed({
      idempotencyKey: `order-${orderId}/confirmOrder`,
      orderId,
      customerId: 'bench',
      totalMinor: 1000,
      currency: 'EUR',
      isLoyaltyMember: false,
    });
    const tx = await db.connect();
    await tx.query('BEGIN');
    await writer.emit(tx, confirmed);
    await tx.query('COMMIT');
    tx.release();
    committedAt.set(confirmed.event.eventId, Date.now());
    return confirmed.event.eventId;
  };
  // Warm up the codec, connector and consumer group: measure only once a record made the trip.
  const warm = await write();
  while (!seenAt.has(warm)) await new Promise((r) => setTimeout(r, 50));
  console.log(
    '| target rate (rows/s) | achieved | p50 ms | p99 ms | p99 first third | p99 last third | drained after stop (ms) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  try {
    for (const rate of rates.length ? rates : [50, 200, 500, 1000, 2000]) {
      const ids: string[] = [];
      const start = Date.now();
      const inflight = new Set<Promise<void>>();
      for (let i = 0; i < rate * SECONDS; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        while (inflight.size >= 16) await Promise.race(inflight);
        const p: Promise<void> = write().then((id) => {
          ids.push(id);
          inflight.delete(p);
        });
        inflight.add(p);
      }
      await Promise.all(inflight);
      const wroteFor = (Date.now() - start) / 1000;
      const stopped = Date.now();
      const deadline = stopped + 60_000;
      while (ids.some((id) => !seenAt.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const drained = Date.now() - stopped;
      const lat = ids.map((id) => {
        const seen = seenAt.get(id);
        return seen === undefined ? Infinity : Math.max(0, seen - committedAt.get(id)!);
      });
      const lost = lat.filter((l) => l === Infinity).length;
      if (lost) console.log(`!! ${lost} committed row(s) not seen on Kafka within 60 s`);
      const third = Math.floor(lat.length / 3);
      console.log(
        `| ${rate} | ${(ids.length / wroteFor).toFixed(0)} | ${pct(lat, 50)} | ${pct(lat, 99)} | ${pct(lat.slice(0, third), 99)} | ${pct(lat.slice(-third), 99)} | ${drained} |`,
      );
      await new Promise((r) => setTimeout(r, 2000));
    }
  } finally {
    await consumer.disconnect();
    await removeOutboxConnector(target, options);
    await db.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
