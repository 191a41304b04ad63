/**
 * Deletes outbox rows that are provably on Kafka, never one that is not.
 *
 * Proof: a row is published once Debezium has confirmed (flushed to the replication slot) a WAL
 * position after the row's commit. Commit positions are not stored, so the cleaner takes a
 * watermark instead: a snapshot S and the WAL insert position L read after it. Every transaction
 * visible in S committed before L. Once the slot's confirmed_flush_lsn ≥ L, every row written by
 * a transaction visible in S has been produced and acknowledged by Kafka, and may go.
 * No slot, an inactive connector, or a slot behind L: nothing is deleted.
 */
import type pg from 'pg';

import { OUTBOX_SERVICE_NAMES } from '../services/registry';
import type { OutboxService } from './outbox-constants';
import { OUTBOX_TABLE } from './outbox-constants';

export interface OutboxWatermark {
  snapshot: string;
  lsn: string;
}

export interface CleanOptions {
  /** The connector's slot (OUTBOX_SLOT_NAME in production). */
  slotName: string;
  /**
   * Logged in as the outbox cleaner's role (kts_outbox_cleaner), which may read and delete outbox
   * rows and nothing else; any role with those privileges will do.
   */
  db: pg.Pool;
  /** The outboxes to clean: every service's by default. */
  services?: readonly OutboxService[];
  /** How long to wait for the slot to pass the watermark before giving up this round. */
  waitMs?: number;
}

export interface CleanReport {
  deleted: Partial<Record<OutboxService, number>>;
  /** False when the slot did not pass the watermark in time (or does not exist): nothing deleted. */
  confirmed: boolean;
}

/** Takes a watermark (snapshot, then WAL position). Any role may call it. */
export async function takeWatermark(db: pg.Pool): Promise<OutboxWatermark> {
  // One statement: the snapshot is taken at its start, the WAL position during it, so L is after S.
  const { rows } = await db.query<{ snapshot: string; lsn: string }>(
    'SELECT pg_current_snapshot()::text AS snapshot, pg_current_wal_insert_lsn()::text AS lsn',
  );
  const row = rows[0];
  if (!row) throw new Error('no watermark returned');
  return row;
}

/** True when the slot exists and has confirmed a position at or after `lsn`. */
export async function slotPassed(db: pg.Pool, slotName: string, lsn: string): Promise<boolean> {
  const { rows } = await db.query<{ passed: boolean | null }>(
    'SELECT confirmed_flush_lsn >= $2::pg_lsn AS passed FROM pg_replication_slots WHERE slot_name = $1',
    [slotName, lsn],
  );
  return rows[0]?.passed === true;
}

/**
 * One cleaning round: watermark, wait (up to `waitMs`) for the slot to pass it, then delete every
 * outbox row whose transaction the watermark's snapshot saw. Idempotent and safe to run from
 * several processes at once (deletes of the same rows just find nothing).
 */
export async function cleanOutboxOnce(options: CleanOptions): Promise<CleanReport> {
  const { db } = options;
  const services = options.services ?? OUTBOX_SERVICE_NAMES;
  if (!services.length) return { deleted: {}, confirmed: false };
  const mark = await takeWatermark(db);
  const deadline = Date.now() + (options.waitMs ?? 30_000);
  while (!(await slotPassed(db, options.slotName, mark.lsn))) {
    if (Date.now() >= deadline) return { deleted: {}, confirmed: false };
    await new Promise((r) => setTimeout(r, 250));
  }
  const deleted: CleanReport['deleted'] = {};
  for (const service of services) {
    const res = await db.query(
      `DELETE FROM ${service}.${OUTBOX_TABLE} WHERE pg_visible_in_snapshot(tx_id, $1::pg_snapshot)`,
      [mark.snapshot],
    );
    deleted[service] = res.rowCount ?? 0;
  }
  return { deleted, confirmed: true };
}

/**
 * Cleans every `intervalMs` until the returned stop() is called. A failed round (database down) is
 * reported through `onError` and retried next round: cleaning late is harmless.
 */
export function startOutboxCleaner(
  options: CleanOptions & { intervalMs: number; onError?: (err: unknown) => void; onRound?: (r: CleanReport) => void },
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const round = () => {
    running = cleanOutboxOnce(options)
      .then((r) => options.onRound?.(r))
      .catch((err: unknown) => options.onError?.(err))
      .finally(() => {
        if (!stopped) timer = setTimeout(round, options.intervalMs);
      });
  };
  timer = setTimeout(round, options.intervalMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
