/**
 * Replays histories against a build of the saga's workflow code, as the saga worker would on
 * restart: the proof that the build can take over the runs those histories stand for.
 */
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';

import { sagaMetricsSinks } from '../../workers/saga-metrics-sinks';
import { initTracing, temporalTracingPlugin } from '../observability/tracing';
import type { LiveHistory } from './live-histories';

/** A run the build cannot take over, and why. */
export interface ReplayFailure {
  workflowId: string;
  runId: string;
  /** `DeterminismViolationError` for a change without patched(), `ReplayError` for other task failures. */
  errorName: string;
  message: string;
}

export interface ReplaySummary {
  replayed: number;
  failures: ReplayFailure[];
}

/**
 * The part of a replay error that says what mismatched. Core's nondeterminism errors wrap it in a
 * paragraph of boilerplate and a debug dump (`message: "[TMPRL1100] …"`); others: the first line.
 */
export function replayReason(message: string): string {
  const inner = /message: "((?:[^"\\]|\\.)*)"/.exec(message)?.[1];
  return (inner ?? message.split('\n', 1)[0] ?? '').trim();
}

/**
 * Replays every history of `histories` (sync or async, e.g. a live download) against `bundle`.
 * The worker is configured as production's: the metrics sinks (a replay must not call them) and
 * the tracing plugin whose sink the bundle's interceptors need. `onFailure` sees each failure as it
 * happens, so a long run reports early.
 */
export async function replayHistories(
  bundle: WorkflowBundleWithSourceMap,
  histories: AsyncIterable<LiveHistory> | Iterable<LiveHistory>,
  onFailure?: (f: ReplayFailure) => void,
): Promise<ReplaySummary> {
  // Results carry only the workflow id; runs of one id replay in input order, so a queue per id
  // gives each result back its run id.
  const runIds = new Map<string, string[]>();
  async function* tracked() {
    for await (const h of histories) {
      const queue = runIds.get(h.workflowId) ?? [];
      queue.push(h.runId);
      runIds.set(h.workflowId, queue);
      yield { workflowId: h.workflowId, history: h.history };
    }
  }
  const summary: ReplaySummary = { replayed: 0, failures: [] };
  const results = Worker.runReplayHistories(
    { workflowBundle: bundle, sinks: sagaMetricsSinks(), plugins: [temporalTracingPlugin(initTracing('kts-deploy'))] },
    tracked(),
  );
  for await (const result of results) {
    summary.replayed++;
    const runId = runIds.get(result.workflowId)?.shift() ?? '?';
    if (!result.error) continue;
    const failure: ReplayFailure = {
      workflowId: result.workflowId,
      runId,
      errorName: result.error.name,
      message: replayReason(result.error.message),
    };
    summary.failures.push(failure);
    onFailure?.(failure);
  }
  return summary;
}
