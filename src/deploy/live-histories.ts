/**
 * The histories a Temporal server holds right now, for the pre-deploy replay check and the fixture
 * recorder: listed through visibility (page by page, newest first) and fetched one run at a time, a
 * few in flight, so a large namespace streams through without being held in memory.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

import { ORDER_SAGA_WORKFLOW_TYPE } from '../shared/saga-contract';

type History = temporal.api.history.v1.IHistory;

export interface HistorySelection {
  /** Extra visibility query, ANDed with the saga's workflow type (e.g. `ExecutionStatus = 'Running'`). */
  query?: string;
  /** Only runs started at or after this instant. */
  since?: Date;
  /** Only runs on this task queue (the saga worker's). */
  taskQueue?: string;
  /** At most this many runs, the most recently started first. */
  limit?: number;
}

/** One downloaded run: what Worker.runReplayHistories takes, plus the run id for the report. */
export interface LiveHistory {
  workflowId: string;
  runId: string;
  status: string;
  history: History;
}

/** The visibility query of a selection: orderSaga runs, open and closed, narrowed by time and the user's query. */
export function selectionQuery(selection: HistorySelection, workflowType = ORDER_SAGA_WORKFLOW_TYPE): string {
  const parts = [`WorkflowType = '${workflowType}'`];
  if (selection.taskQueue) parts.push(`TaskQueue = '${selection.taskQueue}'`);
  if (selection.since) parts.push(`StartTime >= '${selection.since.toISOString()}'`);
  if (selection.query?.trim()) parts.push(`(${selection.query.trim()})`);
  return parts.join(' AND ');
}

export interface DownloadProgress {
  /** Runs listed so far. */
  listed: number;
  /** Histories downloaded so far. */
  downloaded: number;
  /** Runs that vanished between listing and download (retention, or deleted): nothing to replay. */
  gone: number;
}

/** True for the server's NotFound answer (gRPC status 5), whichever SDK error wraps it. */
function isNotFound(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === 5 || e.name === 'WorkflowNotFoundError') return true;
  }
  return false;
}

/**
 * Streams the histories of the selected runs. Listing pages through visibility lazily, and up to
 * `concurrency` histories download at once while the consumer (the replayer) works through earlier
 * ones, in listing order.
 */
export async function* liveHistories(
  client: Client,
  selection: HistorySelection,
  options: { concurrency?: number; onProgress?: (p: DownloadProgress) => void } = {},
): AsyncGenerator<LiveHistory> {
  const concurrency = options.concurrency ?? 4;
  const progress: DownloadProgress = { listed: 0, downloaded: 0, gone: 0 };
  const report = () => options.onProgress?.({ ...progress });
  const pending: Promise<LiveHistory | undefined>[] = [];

  const fetchOne = async (info: WorkflowExecutionInfo): Promise<LiveHistory | undefined> => {
    try {
      const history = await client.workflow.getHandle(info.workflowId, info.runId).fetchHistory();
      progress.downloaded++;
      report();
      return { workflowId: info.workflowId, runId: info.runId, status: info.status.name, history };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      progress.gone++;
      report();
      return undefined;
    }
  };

  const limit = selection.limit ?? Number.POSITIVE_INFINITY;
  if (limit > 0) {
    for await (const info of client.workflow.list({ query: selectionQuery(selection) })) {
      progress.listed++;
      report();
      const next = fetchOne(info);
      // Attach a handler now: a rejection is re-raised when its turn comes, never reported as unhandled.
      next.catch(() => undefined);
      pending.push(next);
      if (pending.length >= concurrency) {
        const done = await pending.shift();
        if (done) yield done;
      }
      if (progress.listed >= limit) break;
    }
  }
  while (pending.length > 0) {
    const done = await pending.shift();
    if (done) yield done;
  }
}

/** `30m`, `24h`, `7d` before `now`, or an ISO date-time; undefined for anything else. */
export function parseSince(v: string, now = Date.now()): Date | undefined {
  const m = /^(\d+)([mhd])$/.exec(v.trim());
  if (m) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
    return new Date(now - Number(m[1]) * unit);
  }
  // Only date-times: a bare number would parse as a year.
  if (!/^\d{4}-\d{2}-\d{2}/.test(v.trim())) return undefined;
  const at = new Date(v);
  return Number.isNaN(at.getTime()) ? undefined : at;
}
