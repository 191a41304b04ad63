/**
 * The Temporal server a pipeline run measures against: a fresh private one per run, so the figures
 * are not skewed by a server that already holds thousands of workflows (issue #10).
 */
import { PrivateTemporal } from '../src/stack/private-temporal';

/** What the benchmark needs of an engine: where it listens, and its life cycle. */
export interface TemporalEngine {
  readonly address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const ENGINE_KINDS = ['dev', 'server'] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];

/** A fresh engine of `kind`, not yet started. */
export async function createEngine(kind: EngineKind): Promise<TemporalEngine> {
  if (kind === 'dev') return PrivateTemporal.create();
  // The full Temporal server on PostgreSQL (issue #10 item 4) is not on main yet.
  throw new Error(
    '--engine server: the full Temporal server (PrivateTemporalServer) is not available yet; use --engine dev',
  );
}
