import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { renderStatus, takeSnapshot } from '../../src/cli/status-view';
import { createMetrics, serveMetrics } from '../../src/observability/metrics';
import { parsePrometheusText, sumOf } from '../../src/observability/prometheus-text';

describe('Prometheus text parsing', () => {
  it('reads names, escaped label values and special numbers, and refuses a malformed line', () => {
    const samples = parsePrometheusText(
      [
        '# HELP x help',
        '# TYPE x counter',
        'x{a="1",b="say \\"hi\\"\\\\"} 3',
        'y 4.5',
        'h_bucket{le="+Inf"} 7',
        '',
      ].join('\n'),
    );
    expect(samples).toEqual([
      { name: 'x', labels: { a: '1', b: 'say "hi"\\' }, value: 3 },
      { name: 'y', labels: {}, value: 4.5 },
      { name: 'h_bucket', labels: { le: '+Inf' }, value: 7 },
    ]);
    expect(() => parsePrometheusText('x{a=1} 3')).toThrow(/unreadable labels/);
  });

  it('reads back every sample prom-client writes', async () => {
    const m = createMetrics('unit');
    m.eventsConsumed.inc({ topic: 't', event_type: 'order.placed' }, 5);
    m.processingSeconds.observe({ event_type: 'order.placed' }, 0.02);
    const samples = parsePrometheusText(await m.registry.metrics());
    expect(sumOf(samples, 'kts_events_consumed_total', { event_type: 'order.placed' })).toBe(5);
    expect(sumOf(samples, 'kts_event_processing_seconds_count')).toBe(1);
  });
});

describe('status view', () => {
  async function twoProcesses() {
    const ingress = createMetrics('ingress');
    const workers = createMetrics('workers');
    const servers = await Promise.all([serveMetrics(ingress.registry, 0), serveMetrics(workers.registry, 0)]);
    const urls = servers.map((s) => `http://127.0.0.1:${s.port}/metrics`);
    return { ingress, workers, urls, close: () => Promise.all(servers.map((s) => s.close())) };
  }

  it('shows lag per partition, events/s from counter deltas, DLQ size, sagas in flight and outcomes', async () => {
    const p = await twoProcesses();
    try {
      const placed = { topic: 'order.placed', event_type: 'order.placed' };
      p.ingress.eventsConsumed.inc(placed, 10);
      const before = await takeSnapshot([...p.urls, 'http://127.0.0.1:1/metrics'], () => 1_000);
      p.ingress.eventsConsumed.inc(placed, 20);
      p.ingress.consumerLag.set({ group: 'order-ingress', topic: 'order.placed', partition: '0' }, 4);
      p.ingress.consumerLag.set({ group: 'order-ingress', topic: 'order.placed', partition: '1' }, 0);
      p.ingress.deadLetterQueueSize.set({ topic: 'order.placed.dlq' }, 3);
      p.ingress.deadLetters.inc({ topic: 'order.placed', reason: 'EmptyPayload' }, 3);
      p.ingress.sagasInFlight.set({ task_queue: 'order-saga' }, 7);
      p.workers.sagaOutcomes.inc({ outcome: 'CONFIRMED' }, 5);
      p.workers.sagaOutcomes.inc({ outcome: 'FAILED' }, 2);
      p.workers.compensationFailed.inc();
      p.workers.compensations.inc({ step: 'releaseStock' }, 2);
      const after = await takeSnapshot([...p.urls, 'http://127.0.0.1:1/metrics'], () => 3_000);
      const text = renderStatus(after, before);
      expect(text).toContain('(2/3 metrics endpoints answering)');
      expect(text).toContain('not answering: http://127.0.0.1:1/metrics');
      // 20 more events in 2 s.
      expect(text).toMatch(/order\.placed\s+30\s+10\.0/);
      expect(text).toContain('order-ingress / order.placed  total 4  [p0=4 p1=0]');
      expect(text).toMatch(/order\.placed\.dlq\s+3 record\(s\)/);
      expect(text).toContain('dead-lettered since start: EmptyPayload 3');
      expect(text).toContain('in flight 7   confirmed 5   failed 2   COMPENSATION_FAILED 1   compensations run 2');
      expect(text).toContain('COMPENSATION_FAILED need a human');
    } finally {
      await p.close();
    }
  });

  it('shows a blocked partition with its record and attempts, and the parked sagas', async () => {
    const p = await twoProcesses();
    try {
      p.ingress.blockedRecord.set({ topic: 'order.placed', partition: '2', offset: '41' }, 6);
      p.ingress.sagasParked.set({ task_queue: 'order-saga' }, 2);
      p.ingress.sagasParkedOverdue.set({ task_queue: 'order-saga' }, 1);
      const text = renderStatus(await takeSnapshot(p.urls, () => 1_000));
      expect(text).toContain(
        '⚠ order.placed/2 at offset 41: 6 failed attempt(s)  → npm run orders -- blocked dead-letter' +
          ' --topic order.placed --partition 2 --offset 41 --reason …',
      );
      expect(text).toContain('⚠ 2 saga(s) PARKED (1 waiting too long): npm run orders -- parked list');
    } finally {
      await p.close();
    }
  });

  it('shows the loyalty consumer: what it processed, points awarded and revoked, its lag and dead letters', async () => {
    const loyalty = createMetrics('loyalty');
    const server = await serveMetrics(loyalty.registry, 0);
    try {
      const url = `http://127.0.0.1:${server.port}/metrics`;
      // Nothing about loyalty until a process reports its group.
      expect(renderStatus(await takeSnapshot([url]))).not.toContain('Loyalty');
      loyalty.loyaltyOutcomes.inc({ outcome: 'AWARDED' }, 4);
      loyalty.loyaltyOutcomes.inc({ outcome: 'NO_POINTS' }, 3);
      loyalty.loyaltyOutcomes.inc({ outcome: 'REVOKED' }, 1);
      loyalty.loyaltyOutcomes.inc({ outcome: 'DUPLICATE_EVENT' }, 2);
      loyalty.loyaltyPoints.inc({ direction: 'awarded' }, 410);
      loyalty.loyaltyPoints.inc({ direction: 'revoked' }, 25);
      loyalty.consumerLag.set({ group: 'scope1.loyalty', topic: 'scope1.order.confirmed', partition: '0' }, 6);
      loyalty.consumerLag.set({ group: 'scope1.loyalty', topic: 'scope1.order.failed', partition: '1' }, 1);
      // Another group's lag and DLQ are not the loyalty consumer's.
      loyalty.consumerLag.set({ group: 'order-ingress', topic: 'order.placed', partition: '0' }, 50);
      loyalty.deadLetterQueueSize.set({ topic: 'scope1.loyalty.dlq' }, 2);
      loyalty.deadLetterQueueSize.set({ topic: 'order.placed.dlq' }, 9);
      const text = renderStatus(await takeSnapshot([url]));
      expect(text).toContain('Loyalty (choreographed');
      expect(text).toContain('processed 10   awarded 4   no points 3   revoked 1   duplicates 2');
      expect(text).toContain('points awarded 410   revoked 25   lag 7   dead letters 2');
    } finally {
      await server.close();
    }
  });

  it('shows the same lag once when two processes report it, never the sum', async () => {
    const p = await twoProcesses();
    try {
      for (const m of [p.ingress, p.workers]) m.consumerLag.set({ group: 'g', topic: 't', partition: '0' }, 5);
      expect(renderStatus(await takeSnapshot(p.urls))).toContain('g / t  total 5  [p0=5]');
    } finally {
      await p.close();
    }
  });

  it('`status --once` prints one snapshot of the given endpoints and exits', async () => {
    const p = await twoProcesses();
    try {
      p.ingress.consumerLag.set({ group: 'g', topic: 't', partition: '2' }, 9);
      const root = path.join(__dirname, '..', '..');
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'src/cli/status.ts', '--once', '--interval', '100', '--url', p.urls[0] ?? ''],
        { cwd: root },
      );
      expect(stdout).toContain('(1/1 metrics endpoints answering)');
      expect(stdout).toContain('g / t  total 9  [p2=9]');
    } finally {
      await p.close();
    }
  });
});
