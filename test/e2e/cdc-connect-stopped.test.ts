/**
 * Failure drill (issue #11): Kafka Connect stopped for a stretch under steady outbox writes.
 *
 * A private Connect worker runs this test's own connector, slot and publication (its KTS_SCOPE) on
 * the shared PostgreSQL, Kafka and registry; the shared worker on 8083 is never touched. The real
 * outbox-cleaner process (`src/outbox/main.ts`, the process that exports the kts_replication_slot_*
 * gauges) runs for the scope, and the test reads the gauges from its /metrics, as Prometheus would.
 * While Connect is down the slot's lag and retained WAL rise and its distance to
 * max_slot_wal_keep_size (set by provisioning) shrinks; once Connect is back they drain, and every
 * outbox row written reaches Kafka and the event store.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';

import pg from 'pg';

import {
  ensureConnector,
  ensurePublication,
  outboxConnectorConfig,
  removeOutboxConnector,
  waitForConnectorRunning,
} from '../../src/cdc/outbox-connector';
import type { EventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { startEventStoreConsumer } from '../../src/event-store/event-store-consumer';
import type { OrderConfirmedV1 } from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import { OUTBOX_HEADERS } from '../../src/outbox/outbox-constants';
import { loadProvisionSettings } from '../../src/provision/settings';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import { PrivateConnect } from '../support/private-connect';
import { freePort } from '../support/private-temporal';
import { cdcTargetOf, testSettings } from '../support/settings';
import { consumeUntil, endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(420_000);

const ROOT = path.join(__dirname, '..', '..');
/** How long Connect stays stopped before it is started again (its JVM start comes on top). */
const DOWN_MS = 45_000;
/** One outbox transaction every this many ms, before, during and after the outage. */
const WRITE_EVERY_MS = 50;

/** Streaming, stopping (SIGTERM), stopped, starting again (JVM, task), streaming again. */
type Phase = 'before' | 'stopping' | 'down' | 'starting' | 'after';
interface Sample {
  at: number;
  phase: Phase;
  lag: number;
  retained: number;
  safe: number | undefined;
}

/** One gauge of one slot from Prometheus text format; undefined when the series is absent. */
function gaugeOf(text: string, name: string, slot: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!line.includes(`slot="${slot}"`)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

describe('Connect stopped for a minute under steady outbox writes', () => {
  let scope: CdcScope;
  let worker: PrivateConnect;
  let store: EventStoreConsumer | undefined;
  let storeStarting: Promise<EventStoreConsumer> | undefined;
  let cleaner: ChildProcess | undefined;
  let cleanerExited: Promise<unknown> = Promise.resolve();
  let metricsUrl = '';
  let cleanerLog = '';
  // The orders service's own role writes the rows, as the orders worker and the API do.
  const orders = new pg.Pool({ connectionString: testSettings(['orders']).roles.orders.pgUrl, max: 2 });
  let writing = false;

  beforeAll(async () => {
    scope = await startCdcScope('cdc_stop', { register: false });
    worker = await PrivateConnect.create(`${scope.prefix}_connect`);
    // Started side by side with Connect: each takes seconds on this machine.
    startCleaner(scope.prefix, await freePort());
    storeStarting = startEventStoreConsumer(testSettings(['eventStore'], scope.prefix));
    storeStarting.catch(() => undefined);
    await worker.start();
    await ensurePublication(endpoints.postgresUrl, scope.options.publicationName, scope.options.tables);
    await ensureConnector(worker.url, scope.options.name, outboxConnectorConfig(cdcTargetOf().adminUrl, scope.options));
    await waitForConnectorRunning(worker.url, scope.options.name, 180_000);
    store = await storeStarting;
  });

  /**
   * The real outbox-cleaner process of the scope: it exports the replication-slot gauges. Its
   * clean-up rounds are pushed past the test's end: they would delete rows of the shared outbox
   * tables that other tests on this server may be counting; the gauges have their own clock.
   */
  function startCleaner(prefix: string, port: number): void {
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    const logDir = path.join(ROOT, '.stack', 'logs', 'drills');
    mkdirSync(logDir, { recursive: true });
    cleanerLog = path.join(logDir, `${prefix}-outbox-cleaner.log`);
    const log = createWriteStream(cleanerLog, { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/outbox/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        KTS_SCOPE: prefix,
        KTS_METRICS_PORT: String(port),
        KTS_REPLICATION_SLOT_SAMPLE_MS: '1000',
        KTS_OUTBOX_CLEAN_INTERVAL_MS: '600000',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    cleaner = child;
    cleanerExited = new Promise((r) => child.once('exit', r));
  }

  afterAll(async () => {
    writing = false;
    // Every step runs even when one before it failed: a slot left behind pins WAL on the shared server.
    const steps: [string, () => Promise<unknown>][] = [
      [
        'outbox cleaner',
        async () => {
          if (cleaner && cleaner.exitCode === null) cleaner.kill('SIGTERM');
          await cleanerExited;
        },
      ],
      ['event store', async () => (store ?? (await storeStarting))?.stop()],
      [
        'connector',
        async () =>
          scope &&
          removeOutboxConnector(cdcTargetOf(), scope.options, {
            connectUrl: worker.url,
            dropSlot: false,
            dropPublication: false,
          }),
      ],
      ['private Connect', async () => worker?.stop()],
      // Drops the slot (once no walsender holds it) and the publication.
      ['slot and publication', async () => scope?.stop()],
      ['orders pool', () => orders.end()],
    ];
    for (const [what, step] of steps) {
      await step().catch((err: unknown) => console.warn(`cleanup of ${what} failed: ${(err as Error).message}`));
    }
  });

  it('the slot gauges rise while Connect is down and drain after; every row reaches Kafka and the store', async () => {
    const slot = scope.options.slotName;
    const admin = scope.admin;

    // Provisioning (stack up) has bounded the WAL a slot may keep, and this slot is bounded by it.
    const declaredMb = loadProvisionSettings().plan.maxSlotWalKeepSizeMb;
    const setting = await admin.query<{ setting: string }>(
      "SELECT setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size'",
    );
    expect(Number(setting.rows[0]?.setting)).toBe(declaredMb);
    expect(declaredMb).toBeGreaterThan(0);

    const scrape = async () => {
      const res = await fetch(metricsUrl);
      return res.text();
    };
    const samples: Sample[] = [];
    let phase: Phase = 'before';
    const readGauges = async (): Promise<Sample | undefined> => {
      const text = await scrape().catch(() => '');
      const lag = gaugeOf(text, 'kts_replication_slot_lag_bytes', slot);
      const retained = gaugeOf(text, 'kts_replication_slot_retained_wal_bytes', slot);
      if (lag === undefined || retained === undefined) return undefined;
      return { at: Date.now(), phase, lag, retained, safe: gaugeOf(text, 'kts_replication_slot_safe_wal_bytes', slot) };
    };
    await waitUntil(
      'the outbox cleaner exporting this slot',
      async () => {
        if (cleaner?.exitCode !== null) throw new Error(`the outbox cleaner exited; see ${cleanerLog}`);
        return readGauges();
      },
      (s) => s !== undefined,
      { timeoutMs: 120_000 },
    );
    let scraping = true;
    const scraper = (async () => {
      while (scraping) {
        const s = await readGauges();
        if (s) samples.push(s);
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();

    // Steady writes: one order.confirmed event per transaction, through the product's outbox writer.
    const written: { eventId: string; phase: Phase; payloadBytes: number }[] = [];
    writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const event: OrderConfirmedV1 = {
          eventId: randomUUID(),
          eventType: 'order.confirmed',
          eventVersion: 1,
          occurredAt: Date.now(),
          orderId: uniqueName(`ord-${i}`),
          customerId: 'cust-connect-drill',
          totalMinor: 100 + i,
          currency: 'EUR',
        };
        const at = phase;
        const tx = await orders.connect();
        try {
          await tx.query('BEGIN');
          await scope.writer.append(tx, 'orders', { topic: TOPICS.orderConfirmed, aggregateType: 'order', event });
          await tx.query('COMMIT');
          // The row's payload bytes are in the WAL: a floor for what the slot must keep.
          const payloadBytes = (await scope.codec.encode(TOPICS.orderConfirmed, event)).length;
          written.push({ eventId: event.eventId, phase: at, payloadBytes });
        } finally {
          tx.release();
        }
        await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
      }
    })();

    await new Promise((r) => setTimeout(r, 5_000));
    const stoppedAt = Date.now();
    phase = 'stopping';
    await worker.halt();
    const haltedAt = Date.now();
    phase = 'down';
    await new Promise((r) => setTimeout(r, DOWN_MS));
    phase = 'starting';
    await worker.start();
    await waitForConnectorRunning(worker.url, scope.options.name, 180_000);
    const runningAt = Date.now();
    phase = 'after';
    await new Promise((r) => setTimeout(r, 5_000));
    writing = false;
    await writer;

    // The gauges drain: the lag to a quarter of its peak at most, the retained WAL to half (restart_lsn
    // follows in steps: PostgreSQL logs the running transactions it needs every 15 s).
    const before = samples.filter((s) => s.phase === 'before');
    const down = samples.filter((s) => s.phase === 'down');
    const baseline = Math.max(...before.map((s) => s.lag));
    const outage = samples.filter((s) => s.phase === 'down' || s.phase === 'starting');
    const peakLag = Math.max(...outage.map((s) => s.lag));
    const peakRetained = Math.max(...outage.map((s) => s.retained));

    const drained = await waitUntil(
      'the slot to drain',
      readGauges,
      (s) => s !== undefined && s.lag <= peakLag / 4 && s.retained <= peakRetained / 2,
      { timeoutMs: 120_000 },
    );
    const drainedAt = Date.now();
    scraping = false;
    await scraper;
    const kib = (n: number) => Math.round(n / 1024);
    console.log(
      `slot ${slot} every second (phase lag/retained KiB): ` +
        samples.map((x) => `${x.phase[0]}${kib(x.lag)}/${kib(x.retained)}`).join(' '),
    );

    // While down, nothing confirms or frees WAL: the gauges only grow, by at least the rows written,
    // and the WAL left before invalidation shrinks by as much as the retained WAL grows.
    expect(before.length).toBeGreaterThan(0);
    expect(down.length).toBeGreaterThan(DOWN_MS / 1000 / 2);
    for (let i = 1; i < down.length; i++) {
      expect(down[i]!.lag).toBeGreaterThanOrEqual(down[i - 1]!.lag);
      expect(down[i]!.retained).toBeGreaterThanOrEqual(down[i - 1]!.retained);
    }
    const writtenDown = written.filter((w) => w.phase === 'down');
    const payloadDown = writtenDown.reduce((n, w) => n + w.payloadBytes, 0);
    const rise = down.at(-1)!.lag - down[0]!.lag;
    expect(writtenDown.length).toBeGreaterThan(0);
    // The first down sample may predate some of those rows by up to a second; they are in the WAL all the same.
    expect(rise).toBeGreaterThan(payloadDown / 2);
    const firstSafe = down[0]!.safe;
    const lastSafe = down.at(-1)!.safe;
    expect(firstSafe).toBeDefined();
    expect(lastSafe).toBeDefined();
    // Both read the server's WAL position, a moment apart, while other sessions write.
    const shrunk = firstSafe! - lastSafe!;
    const grown = down.at(-1)!.retained - down[0]!.retained;
    expect(Math.abs(shrunk - grown)).toBeLessThan(Math.max(256 * 1024, grown / 10));

    // What PostgreSQL holds (the cleaner deleted nothing: its first round is due after the test).
    const committed = await admin.query<{ n: string }>('SELECT count(*) AS n FROM orders.outbox WHERE topic = $1', [
      scope.writer.destination(TOPICS.orderConfirmed),
    ]);
    expect(Number(committed.rows[0]?.n)).toBe(written.length);

    // Nothing lost: every row written reached the topic (Debezium is at-least-once: count repeats).
    const wanted = new Set(written.map((w) => w.eventId));
    const seen = new Map<string, number>();
    await consumeUntil(
      scope.writer.destination(TOPICS.orderConfirmed),
      (messages) => {
        const id = messages.at(-1)?.headers?.[OUTBOX_HEADERS.eventId]?.toString();
        if (id && wanted.has(id)) seen.set(id, (seen.get(id) ?? 0) + 1);
        return seen.size === wanted.size;
      },
      180_000,
    );
    expect([...wanted].filter((id) => !seen.has(id))).toEqual([]);
    const twice = [...seen.values()].filter((n) => n > 1).length;

    // …and the event store holds each once.
    const stored = await waitUntil(
      'every event in the store',
      async () =>
        (
          await admin.query<{ n: string; distinct: string }>(
            'SELECT count(*) AS n, count(DISTINCT event_id) AS distinct FROM event_store.events WHERE event_id = ANY($1::uuid[])',
            [[...wanted]],
          )
        ).rows[0]!,
      (r) => Number(r.distinct) >= wanted.size,
      { timeoutMs: 180_000 },
    );
    expect(Number(stored.n)).toBe(wanted.size);

    console.log(
      [
        `Connect stopped ${((runningAt - stoppedAt) / 1000).toFixed(0)} s (SIGTERM took ${((haltedAt - stoppedAt) / 1000).toFixed(0)} s,`,
        `down ${DOWN_MS / 1000} s, start to RUNNING ${((runningAt - haltedAt - DOWN_MS) / 1000).toFixed(0)} s);`,
        `${committed.rows[0]?.n} rows in the outbox (${writtenDown.length} written while down), ${seen.size} delivered, ${twice} twice;`,
        `store ${stored.n};`,
        `slot lag ${mib(baseline)} before → peak ${mib(peakLag)}, retained peak ${mib(peakRetained)},`,
        `WAL left before invalidation ${mib(firstSafe!)} → ${mib(lastSafe!)} of ${declaredMb} MB;`,
        `drained to lag ${mib(drained!.lag)} / retained ${mib(drained!.retained)} ${((drainedAt - runningAt) / 1000).toFixed(0)} s after Connect ran again`,
      ].join(' '),
    );
  });
});
