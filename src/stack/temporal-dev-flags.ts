/**
 * The one definition of how the Temporal dev server (`temporal server start-dev`) is tuned, shared by the
 * local stack's component, PrivateTemporal (tests and benchmarks) and docker-compose.yml's `command:`
 * (test/unit/temporal-dev-flags.test.ts fails when compose differs). Each value is kept only with the A/B
 * ratio `bench/temporal-flags.ts` measured for it (BENCHMARKS.md, "Temporal dev server flags").
 */

/** SQLite pragmas, `--sqlite-pragma NAME=VALUE`. */
export type SqlitePragmas = Readonly<Record<string, string>>;

/** Dynamic config values, `--dynamic-config-value KEY=JSON`. */
export type DynamicConfig = Readonly<Record<string, string | number | boolean>>;

/** What start-dev is told beyond addresses, ports and the database file. */
export interface TemporalDevTuning {
  readonly sqlitePragmas: SqlitePragmas;
  readonly dynamicConfig: DynamicConfig;
}

/**
 * The dev server's tuning:
 * - `journal_mode=wal`: a commit appends to the write-ahead log instead of rewriting pages through a rollback
 *   journal, and readers (visibility queries, the Web UI) no longer block the writer.
 * - `synchronous=normal`: with WAL, the log is fsynced at checkpoints only, not at every commit. A commit is
 *   still in the OS's page cache before the call returns, so a killed server process (kill -9, a crash) loses
 *   nothing; only a power loss or kernel crash can lose the last commits, which a development server accepts.
 *
 * No dynamic config yet: one read and one write partition per task queue (instead of four) looks right for a
 * single node, but its only A/B so far (quick mode, machine loaded) did not favour it, so it is not kept; the
 * benchmark's `partitions-1` variant measures it on a quiet machine.
 */
export const TEMPORAL_DEV_TUNING: TemporalDevTuning = {
  sqlitePragmas: { journal_mode: 'wal', synchronous: 'normal' },
  // One partition per task queue: on a single node, four partitions only spread one queue's tasks and
  // polls over four matching loops (quiet A/B: bursts 1.12× faster with one, latency unchanged).
  dynamicConfig: { 'matching.numTaskqueueReadPartitions': 1, 'matching.numTaskqueueWritePartitions': 1 },
};

/** A tuning with some values replaced; `null` removes a value (start-dev's own default applies). */
export interface TemporalDevOverrides {
  readonly sqlitePragmas?: Readonly<Record<string, string | null>>;
  readonly dynamicConfig?: Readonly<Record<string, string | number | boolean | null>>;
}

function merge<T>(base: Readonly<Record<string, T>>, over: Readonly<Record<string, T | null>> = {}): Record<string, T> {
  const out: Record<string, T> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

/** TEMPORAL_DEV_TUNING with `overrides` applied (used by benchmarks' variants and explicit exceptions). */
export function tuningWith(overrides: TemporalDevOverrides = {}): TemporalDevTuning {
  return {
    sqlitePragmas: merge(TEMPORAL_DEV_TUNING.sqlitePragmas, overrides.sqlitePragmas),
    dynamicConfig: merge(TEMPORAL_DEV_TUNING.dynamicConfig, overrides.dynamicConfig),
  };
}

/**
 * The command-line arguments for `temporal server start-dev` that carry a tuning (default: the shared one),
 * in a stable order: pragmas, then dynamic config, each in the order defined.
 */
export function temporalDevFlags(tuning: TemporalDevTuning = TEMPORAL_DEV_TUNING): string[] {
  return [
    ...Object.entries(tuning.sqlitePragmas).flatMap(([k, v]) => ['--sqlite-pragma', `${k}=${v}`]),
    // Values are JSON: a string needs its quotes, numbers and booleans do not.
    ...Object.entries(tuning.dynamicConfig).flatMap(([k, v]) => [
      '--dynamic-config-value',
      `${k}=${JSON.stringify(v)}`,
    ]),
  ];
}
