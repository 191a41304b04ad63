/**
 * The `status` command's picture of the system, from the processes' /metrics endpoints: consumer lag
 * per partition, events/s (from counter deltas between two scrapes), DLQ size, sagas in flight and
 * outcomes. Pure functions, so the view is tested without a terminal.
 */
import type { Sample } from '../observability/prometheus-text';
import { samplesOf, scrape } from '../observability/prometheus-text';

export interface EndpointState {
  url: string;
  ok: boolean;
  error?: string;
}

export interface Snapshot {
  /** Epoch ms of the scrape. */
  at: number;
  endpoints: EndpointState[];
  /** Samples of every answering endpoint, each with an `endpoint` label naming where it came from. */
  samples: Sample[];
}

/** Scrapes every URL in parallel; one that does not answer is reported, not fatal. */
export async function takeSnapshot(urls: readonly string[], now = Date.now): Promise<Snapshot> {
  const results = await Promise.all(
    urls.map(async (url) => {
      try {
        const samples = await scrape(url);
        return {
          state: { url, ok: true },
          samples: samples.map((s) => ({ ...s, labels: { ...s.labels, endpoint: url } })),
        };
      } catch (err) {
        const error =
          err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
        return { state: { url, ok: false, error }, samples: [] as Sample[] };
      }
    }),
  );
  return { at: now(), endpoints: results.map((r) => r.state), samples: results.flatMap((r) => r.samples) };
}

/** Counter totals by the given labels, summed over endpoints (each process counts its own records). */
function totalsBy(samples: Sample[], name: string, keys: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samplesOf(samples, name)) {
    const k = keys.map((key) => s.labels[key] ?? '').join(' ');
    out.set(k, (out.get(k) ?? 0) + s.value);
  }
  return out;
}

/**
 * Gauges describing shared state (lag of a group, size of a topic) by the given labels. Two
 * processes may report the same one (the main job and a separate ingress): the largest is shown,
 * never their sum.
 */
function gaugesBy(samples: Sample[], name: string, keys: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samplesOf(samples, name)) {
    const k = keys.map((key) => s.labels[key] ?? '').join(' ');
    out.set(k, Math.max(out.get(k) ?? -Infinity, s.value));
  }
  return out;
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

function mean(samples: Sample[], name: string, labels: Record<string, string>): string {
  const count = samplesOf(samples, `${name}_count`, labels).reduce((n, s) => n + s.value, 0);
  const sum = samplesOf(samples, `${name}_sum`, labels).reduce((n, s) => n + s.value, 0);
  return count === 0 ? '-' : `${fmt((sum / count) * 1000, 1)} ms`;
}

/**
 * The status text. `previous` (an earlier snapshot) turns counters into rates; without it rates
 * show as `-`. Only endpoints that answer contribute; the others are listed once, as down.
 */
export function renderStatus(current: Snapshot, previous?: Snapshot): string {
  const lines: string[] = [];
  const up = current.endpoints.filter((e) => e.ok);
  const down = current.endpoints.filter((e) => !e.ok);
  lines.push(
    `kafka-temporal-saga status  ${new Date(current.at).toISOString().slice(11, 19)}  ` +
      `(${up.length}/${current.endpoints.length} metrics endpoints answering)`,
  );
  for (const e of up) lines.push(`  ✔ ${e.url}`);
  if (down.length > 0) lines.push(`  ✖ not answering: ${down.map((e) => e.url).join(', ')}`);
  if (up.length === 0) {
    lines.push('', 'Nothing to show: start the app (npm start) or pass --url for each process.');
    return lines.join('\n');
  }
  const s = current.samples;
  const seconds = previous ? (current.at - previous.at) / 1000 : 0;

  lines.push('', 'Throughput (events consumed)        total      /s');
  const consumed = totalsBy(s, 'kts_events_consumed_total', ['event_type']);
  const consumedBefore = previous ? totalsBy(previous.samples, 'kts_events_consumed_total', ['event_type']) : undefined;
  const errors = totalsBy(s, 'kts_event_errors_total', ['event_type']);
  if (consumed.size === 0) lines.push('  (no events consumed yet)');
  for (const [type, total] of [...consumed].sort()) {
    const rate = consumedBefore && seconds > 0 ? (total - (consumedBefore.get(type) ?? 0)) / seconds : NaN;
    const latency = mean(s, 'kts_event_processing_seconds', { event_type: type });
    lines.push(
      `  ${type.padEnd(30)} ${fmt(total).padStart(7)} ${fmt(rate, 1).padStart(7)}` +
        `   errors ${fmt(errors.get(type) ?? 0)}   mean processing ${latency}`,
    );
  }

  lines.push('', 'Consumer lag (group / topic / partition)');
  const lag = gaugesBy(s, 'kts_consumer_lag', ['group', 'topic', 'partition']);
  if (lag.size === 0) lines.push('  (no consumer reports lag yet)');
  const byGroupTopic = new Map<string, { partition: string; lag: number }[]>();
  for (const [k, v] of lag) {
    const [group = '', topic = '', partition = ''] = k.split(' ');
    const key = `${group} / ${topic}`;
    byGroupTopic.set(key, [...(byGroupTopic.get(key) ?? []), { partition, lag: v }]);
  }
  for (const [key, parts] of [...byGroupTopic].sort()) {
    parts.sort((a, b) => Number(a.partition) - Number(b.partition));
    const total = parts.reduce((n, p) => n + p.lag, 0);
    lines.push(`  ${key}  total ${fmt(total)}  [${parts.map((p) => `p${p.partition}=${fmt(p.lag)}`).join(' ')}]`);
  }

  lines.push('', 'Dead-letter queues');
  const dlq = gaugesBy(s, 'kts_dead_letter_queue_size', ['topic']);
  const reasons = totalsBy(s, 'kts_dead_letters_total', ['reason']);
  if (dlq.size === 0) lines.push('  (no DLQ size reported yet)');
  for (const [topic, size] of [...dlq].sort()) lines.push(`  ${topic.padEnd(40)} ${fmt(size)} record(s)`);
  if (reasons.size > 0) {
    lines.push(`  dead-lettered since start: ${[...reasons].map(([r, n]) => `${r} ${fmt(n)}`).join(', ')}`);
  }

  const blocked = gaugesBy(s, 'kts_ingress_blocked_record_attempts', ['topic', 'partition', 'offset']);
  if (blocked.size > 0) {
    lines.push('', 'Blocked partitions (a record the handler keeps failing on)');
    for (const [k, attempts] of [...blocked].sort()) {
      const [topic = '', partition = '', offset = ''] = k.split(' ');
      lines.push(
        `  ⚠ ${topic}/${partition} at offset ${offset}: ${fmt(attempts)} failed attempt(s)` +
          `  → npm run orders -- blocked dead-letter --topic ${topic} --partition ${partition} --offset ${offset} --reason …`,
      );
    }
  }

  lines.push(...loyaltyLines(s));

  lines.push('', 'Sagas');
  const inFlight = [...gaugesBy(s, 'kts_sagas_in_flight', ['task_queue']).values()].reduce((n, v) => n + v, 0);
  const outcomes = totalsBy(s, 'kts_saga_outcomes_total', ['outcome']);
  const compensations = [...totalsBy(s, 'kts_compensations_total', ['step']).values()].reduce((n, v) => n + v, 0);
  const failed = [...totalsBy(s, 'kts_compensation_failed_total', []).values()].reduce((n, v) => n + v, 0);
  lines.push(
    `  in flight ${fmt(inFlight)}   confirmed ${fmt(outcomes.get('CONFIRMED') ?? 0)}   failed ${fmt(outcomes.get('FAILED') ?? 0)}` +
      `   COMPENSATION_FAILED ${fmt(failed)}   compensations run ${fmt(compensations)}`,
  );
  lines.push(
    `  mean event→saga-complete: confirmed ${mean(s, 'kts_event_to_saga_complete_seconds', { outcome: 'CONFIRMED' })}` +
      `, failed ${mean(s, 'kts_event_to_saga_complete_seconds', { outcome: 'FAILED' })}`,
  );
  const parked = [...gaugesBy(s, 'kts_sagas_parked', ['task_queue']).values()].reduce((n, v) => n + v, 0);
  const overdue = [...gaugesBy(s, 'kts_sagas_parked_overdue', ['task_queue']).values()].reduce((n, v) => n + v, 0);
  if (parked > 0) {
    lines.push(
      `  ⚠ ${fmt(parked)} saga(s) PARKED${overdue > 0 ? ` (${fmt(overdue)} waiting too long)` : ''}: npm run orders -- parked list`,
    );
  } else if (failed > 0) {
    lines.push('  ⚠ sagas in COMPENSATION_FAILED need a human: npm run orders -- parked list, or the Temporal Web UI');
  }
  return lines.join('\n');
}

/**
 * The choreographed loyalty service, from its /metrics (the same counters and gauges as the ingress
 * section: lag of its group, its dead-letter topic, what it processed). Nothing when no process runs it.
 */
function loyaltyLines(s: Sample[]): string[] {
  const isLoyaltyGroup = (group: string | undefined) => /(^|\.)loyalty$/.test(group ?? '');
  const outcomes = totalsBy(s, 'kts_loyalty_events_processed_total', ['outcome']);
  const points = totalsBy(s, 'kts_loyalty_points_total', ['direction']);
  const lag = [...gaugesBy(s, 'kts_consumer_lag', ['group', 'topic', 'partition'])]
    .filter(([k]) => isLoyaltyGroup(k.split(' ')[0]))
    .reduce((n, [, v]) => n + v, 0);
  const dlq = [...gaugesBy(s, 'kts_dead_letter_queue_size', ['topic'])]
    .filter(([topic]) => /(^|\.)loyalty\.dlq$/.test(topic))
    .reduce((n, [, v]) => n + v, 0);
  const runs = outcomes.size > 0 || samplesOf(s, 'kts_consumer_lag').some((x) => isLoyaltyGroup(x.labels.group));
  if (!runs) return [];
  const processed = [...outcomes.values()].reduce((n, v) => n + v, 0);
  const n = (o: string) => fmt(outcomes.get(o) ?? 0);
  return [
    '',
    'Loyalty (choreographed: reacts to order.confirmed, payment-refunded, order.failed)',
    `  processed ${fmt(processed)}   awarded ${n('AWARDED')}   no points ${n('NO_POINTS')}   revoked ${n('REVOKED')}` +
      `   duplicates ${n('DUPLICATE_EVENT')}`,
    `  points awarded ${fmt(points.get('awarded') ?? 0)}   revoked ${fmt(points.get('revoked') ?? 0)}` +
      `   lag ${fmt(lag)}   dead letters ${fmt(dlq)}`,
  ];
}
