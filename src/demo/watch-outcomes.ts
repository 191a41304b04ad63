/**
 * Follows the demo orders to their end through Temporal (the source of truth for saga state) and
 * the dead-letter topic, with live counters, then summarises.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Kafka } from 'kafkajs';

import { deadLetterTopic } from '../events/topics';
import { TOPICS } from '../events/topics';
import type { LoyaltyTotals } from '../services/loyalty/loyalty-ledger';
import type { OrderSagaResult, SagaState } from '../shared/saga-contract';
import { FailureType, orderWorkflowId } from '../shared/saga-contract';
import type { DemoBatch, DemoKind } from './demo-orders';

export interface OrderOutcome {
  orderId: string;
  kind: DemoKind;
  /** undefined while the saga has not ended (or not started) yet. */
  state?: SagaState;
  /** Event occurredAt → saga closed. */
  latencyMs?: number;
}

export interface DemoSummary {
  outcomes: OrderOutcome[];
  sagasStarted: number;
  deadLettered: number;
  deadLetterExpected: number;
  duplicatesSent: number;
  /** Workflow runs found for the duplicated orders' ids: one each when dedupe works. */
  duplicateRuns: number;
  timedOut: boolean;
  /** The loyalty service's figures for the demo orders, read from its tables (absent when it does not run). */
  loyalty?: LoyaltyTotals & { expectedPoints: number; membersConfirmed: number };
}

/** Reads the loyalty service's figures for some orders from its own tables (LoyaltyLedger.totalsFor). */
export type LoyaltyTotalsReader = (orderIds: readonly string[]) => Promise<LoyaltyTotals>;

/** Sum of a topic's high watermarks: how many records it has ever received. */
export async function topicRecordCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** What state each demo kind should end in. */
export function expectedState(kind: DemoKind): SagaState {
  return kind === 'happy' ? 'CONFIRMED' : 'FAILED';
}

/**
 * Polls until every demo saga has closed and every bad record is in the dead-letter topic, or until
 * `timeoutMs`. `onTick` gets live counters twice a second.
 */
export async function watchDemo(
  client: Client,
  kafka: Kafka,
  batch: DemoBatch,
  dlqBefore: number,
  onTick: (s: DemoSummary) => void,
  timeoutMs = 180_000,
  placedTopic: string = TOPICS.orderPlaced,
  loyalty?: LoyaltyTotalsReader,
): Promise<DemoSummary> {
  const outcomes: OrderOutcome[] = batch.orders.map((o) => ({ orderId: o.orderId, kind: o.kind }));
  const occurredAt = new Map(batch.orders.map((o) => [o.orderId, o.occurredAt]));
  const deadline = Date.now() + timeoutMs;
  const summary: DemoSummary = {
    outcomes,
    sagasStarted: 0,
    deadLettered: 0,
    deadLetterExpected: batch.malformed.length,
    duplicatesSent: batch.duplicated.length,
    duplicateRuns: 0,
    timedOut: false,
  };
  for (;;) {
    let started = 0;
    await Promise.all(
      outcomes.map(async (o) => {
        if (o.state) {
          started += 1;
          return;
        }
        const handle = client.workflow.getHandle<() => Promise<OrderSagaResult>>(orderWorkflowId(o.orderId));
        try {
          const d = await handle.describe();
          started += 1;
          if (d.status.name === 'RUNNING') return;
          o.state = await finalState(handle, d.status.name);
          o.latencyMs = (d.closeTime ?? new Date()).getTime() - (occurredAt.get(o.orderId) ?? 0);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }),
    );
    summary.sagasStarted = started;
    summary.deadLettered = (await topicRecordCount(kafka, deadLetterTopic(placedTopic))) - dlqBefore;
    if (loyalty) {
      const confirmed = outcomes.filter((o) => o.state === 'CONFIRMED').map((o) => o.orderId);
      summary.loyalty = {
        ...(await loyalty(confirmed)),
        expectedPoints: batch.orders.reduce((n, o) => n + o.expectedPoints, 0),
        membersConfirmed: batch.orders.filter((o) => o.loyaltyMember && confirmed.includes(o.orderId)).length,
      };
    }
    onTick(summary);
    // The loyalty service hears of a confirmation through the outbox, Debezium and Kafka, after the
    // saga closed: wait until it has handled every confirmed order's event too.
    const loyaltyDone =
      !summary.loyalty ||
      summary.loyalty.confirmationsHandled >= outcomes.filter((o) => o.state === 'CONFIRMED').length;
    const done = outcomes.every((o) => o.state) && summary.deadLettered >= summary.deadLetterExpected && loyaltyDone;
    if (done) {
      summary.duplicateRuns = await countRuns(client, batch.duplicated);
      return summary;
    }
    if (Date.now() > deadline) return { ...summary, timedOut: true };
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * A closed saga's terminal state. COMPENSATION_FAILED ends the workflow as failed, with type
 * CompensationFailed, so it shows in Temporal's failed list; anything else not completed is FAILED.
 */
async function finalState(handle: WorkflowHandle<() => Promise<OrderSagaResult>>, status: string): Promise<SagaState> {
  try {
    const result = await handle.result();
    return result.status.state;
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === FailureType.CompensationFailed)
      return 'COMPENSATION_FAILED';
    if (status === 'COMPLETED') throw err;
    return 'FAILED';
  }
}

/** Every run (any status) Temporal's visibility store has for these orders' workflow ids. */
async function countRuns(client: Client, orderIds: string[]): Promise<number> {
  if (orderIds.length === 0) return 0;
  const query = orderIds.map((id) => `WorkflowId = '${orderWorkflowId(id)}'`).join(' OR ');
  let runs = 0;
  for await (const _ of client.workflow.list({ query })) runs += 1;
  return runs;
}

function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const secs = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);

/** The end-of-run table: what happened next to what the demo designed, with latencies. */
export function formatSummary(s: DemoSummary, temporalUiUrl: string): string {
  const rows: [string, number, number, number[]][] = [];
  const ended = (state: SagaState) => s.outcomes.filter((o) => o.state === state);
  const expected = (state: SagaState) => s.outcomes.filter((o) => expectedState(o.kind) === state).length;
  rows.push([
    'confirmed',
    ended('CONFIRMED').length,
    expected('CONFIRMED'),
    ended('CONFIRMED').map((o) => o.latencyMs ?? 0),
  ]);
  rows.push([
    'compensated (FAILED)',
    ended('FAILED').length,
    expected('FAILED'),
    ended('FAILED').map((o) => o.latencyMs ?? 0),
  ]);
  rows.push(['COMPENSATION_FAILED', ended('COMPENSATION_FAILED').length, 0, []]);
  rows.push(['dead-lettered', s.deadLettered, s.deadLetterExpected, []]);
  const lines = [
    '',
    `${'outcome'.padEnd(22)} ${'orders'.padStart(6)} ${'expected'.padStart(8)} ${'p50 latency'.padStart(12)} ${'max latency'.padStart(12)}`,
    ...rows.map(
      ([label, n, want, lat]) =>
        `${label.padEnd(22)} ${String(n).padStart(6)} ${String(want).padStart(8)} ${secs(percentile(lat, 50)).padStart(12)} ${secs(percentile(lat, 100)).padStart(12)}`,
    ),
    `duplicates re-sent: ${s.duplicatesSent}, workflow runs for those orders: ${s.duplicateRuns} (one each)`,
    '(latency: order.placed occurredAt → saga closed)',
  ];
  if (s.loyalty) {
    const l = s.loyalty;
    lines.push(
      '',
      `loyalty (choreographed, from its tables): confirmations handled ${l.confirmationsHandled}/${ended('CONFIRMED').length}, ` +
        `${l.ordersAwarded} of ${l.membersConfirmed} member orders earned points`,
      `loyalty points awarded ${l.pointsAwarded} (expected ${l.expectedPoints}), revoked ${l.pointsRevoked} (expected 0)`,
    );
  }
  const link = (o: OrderOutcome | undefined) =>
    o ? `${temporalUiUrl}/namespaces/default/workflows/${encodeURIComponent(orderWorkflowId(o.orderId))}` : '(none)';
  lines.push('', `Temporal Web UI, a confirmed saga:   ${link(ended('CONFIRMED')[0])}`);
  lines.push(`Temporal Web UI, a compensated saga: ${link(ended('FAILED').find((o) => o.kind === 'declined'))}`);
  if (s.timedOut) lines.push('', '✖ some orders had not ended when the demo stopped waiting; see the Web UI');
  return lines.join('\n');
}

/** True when every order ended as designed and every bad record was dead-lettered. */
export function summaryMatchesPlan(s: DemoSummary): boolean {
  return (
    !s.timedOut &&
    s.outcomes.every((o) => o.state === expectedState(o.kind)) &&
    s.deadLettered === s.deadLetterExpected &&
    s.duplicateRuns === s.duplicatesSent &&
    (!s.loyalty || (s.loyalty.pointsAwarded === s.loyalty.expectedPoints && s.loyalty.pointsRevoked === 0))
  );
}
