import type pg from 'pg';

import type { Metrics } from './metrics';

export interface ReplicationSlotSample {
  slot: string;
  active: boolean;
  /** WAL bytes not yet confirmed by the slot's consumer. */
  lagBytes: number;
  /** WAL bytes kept on disk for the slot. */
  retainedWalBytes: number;
}

/**
 * Reads every logical replication slot's lag and retained WAL (any role may read
 * pg_replication_slots) and sets the gauges. A slot whose connector is gone keeps WAL forever and
 * fills the disk: the ReplicationSlotRetainedWal alert watches these.
 */
export async function sampleReplicationSlots(db: pg.Pool, metrics?: Metrics): Promise<ReplicationSlotSample[]> {
  const { rows } = await db.query<{ slot_name: string; active: boolean; lag: string | null; retained: string | null }>(
    `SELECT slot_name, active,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained
       FROM pg_replication_slots WHERE slot_type = 'logical'`,
  );
  const samples = rows.map((r) => ({
    slot: r.slot_name,
    active: r.active,
    lagBytes: Number(r.lag ?? 0),
    retainedWalBytes: Number(r.retained ?? 0),
  }));
  for (const s of samples) {
    metrics?.replicationSlotLagBytes.set({ slot: s.slot }, s.lagBytes);
    metrics?.replicationSlotRetainedWalBytes.set({ slot: s.slot }, s.retainedWalBytes);
  }
  return samples;
}
