import { coresBetween, cpuMsPerUnit, cpuSnapshot } from '../../bench/cpu-accounting';
import type { RateSummary, WindowResult } from '../../bench/pipeline-report';
import {
  ceilingOf,
  isBounded,
  percentile,
  renderCpuTable,
  renderSvg,
  summarize,
  trend,
} from '../../bench/pipeline-report';

const spread = (v: number) => ({ median: v, min: v, max: v });
const rate = (r: number, p99: number, bounded = true): RateSummary => ({
  series: 'pipeline',
  rate: r,
  rounds: 1,
  completionRate: spread(r),
  p50: spread(p99 / 2),
  p95: spread(p99),
  p99: spread(p99),
  confirmedP99: null,
  lagMax: null,
  bounded,
  errors: 0,
});

/** A window at 4/s with nothing remarkable; tests override what they are about. */
const windowOf = (overrides: Partial<WindowResult>): WindowResult => ({
  series: 'engine',
  rate: 4,
  round: 1,
  windowSeconds: 10,
  sent: 40,
  sendRate: 4,
  closed: 40,
  completionRate: 4,
  toClosedMs: null,
  toConfirmedMs: null,
  lag: null,
  inFlight: { max: 3, final: 2, slopePerSecond: 0 },
  bounded: true,
  errors: { deadLetters: 0, notClosed: 0, notCompleted: 0, unexpectedOutcome: 0 },
  ...overrides,
});

/** A CPU snapshot taken at `ms` with CPU seconds per component. */
const at = (ms: number, entries: [string, number][]) => ({ at: ms, seconds: new Map(entries) });

describe('pipeline benchmark arithmetic', () => {
  it('takes nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect([percentile(xs, 50), percentile(xs, 99), percentile(xs, 100)]).toEqual([50, 99, 100]);
    expect(percentile([], 50)).toBeNaN();
  });

  it('calls a backlog that keeps growing unbounded, one that levels off bounded', () => {
    const growing = Array.from({ length: 30 }, (_, i) => i * 2);
    const level = Array.from({ length: 30 }, (_, i) => (i < 5 ? i * 3 : 15 + (i % 2)));
    expect(isBounded(trend(growing), 8)).toBe(false);
    expect(isBounded(trend(level), 8)).toBe(true);
    expect(isBounded(trend([0, 1, 2, 3]), 8)).toBe(true);
  });

  it('puts the ceiling at the last rate, counting from the bottom, that is bounded with p99 within 2x the lowest', () => {
    expect(ceilingOf([rate(2, 700), rate(4, 800), rate(6, 1300), rate(8, 1500)])).toBe(6);
    expect(ceilingOf([rate(2, 700), rate(4, 800, false), rate(6, 900)])).toBe(2);
    expect(ceilingOf([rate(2, 700), rate(4, 1500), rate(6, 900)])).toBe(2);
  });

  it('summarizes rounds into medians with min-max, and draws every series', () => {
    const w = (round: number, p99: number): WindowResult =>
      windowOf({ round, toClosedMs: { p50: p99 / 2, p95: p99, p99, max: p99 }, bounded: round !== 3 });
    const [s] = summarize([w(1, 600), w(2, 900), w(3, 700)]);
    expect(s!.rates[0]!.p99).toEqual({ median: 700, min: 600, max: 900 });
    expect(s!.rates[0]!.bounded).toBe(true);
    expect(s!.ceiling).toBe(4);
    expect(renderSvg([s!], 't')).toContain('engine p99');
    // Two rounds: the median is their mean, not the lower one, and a backlog counts as bounded only if both were.
    const [two] = summarize([w(1, 600), w(3, 900)]);
    expect(two!.rates[0]!.p99).toEqual({ median: 750, min: 600, max: 900 });
    expect(two!.rates[0]!.bounded).toBe(false);
  });

  it('charges CPU milliseconds per unit of work', () => {
    // 200 starts: the engine spent 2 CPU s (10 ms each), the ingress 0.5 s, PostgreSQL 0.001 s (left out).
    const perStart = cpuMsPerUnit(
      at(0, [
        ['engine', 50],
        ['ingress', 7],
        ['postgresql', 3],
      ]),
      at(4_000, [
        ['ingress', 7.5],
        ['engine', 52],
        ['postgresql', 3.001],
      ]),
      200,
    );
    expect(perStart).toEqual({ engine: 10, ingress: 2.5 });
    expect(Object.keys(perStart)).toEqual(['engine', 'ingress']);
  });

  it('charges cores to components and per completed order', () => {
    // 10 s of wall time: the engine spent 9 CPU s (0.9 core); the orchestrator 3; the registry idled.
    const cores = coresBetween(
      at(0, [
        ['engine', 100],
        ['orchestrator', 10],
        ['registry', 5],
      ]),
      at(10_000, [
        ['engine', 109],
        ['orchestrator', 13],
        ['registry', 5.05],
        ['new', 1],
      ]),
    );
    expect(cores).toEqual({ engine: 0.9, orchestrator: 0.3, new: 0.1 });
    expect(Object.keys(cores)).toEqual(['engine', 'orchestrator', 'new']);
    const window = (round: number, engine: number): WindowResult =>
      windowOf({ series: 'pipeline', round, cpu: { engine, ingress: 0.2 } });
    // Round 0 is the warm-up: not counted. Median of 0.6 and 1.0 is 0.8; with the ingress, 1.0 core for 4 orders/s.
    const table = renderCpuTable([window(0, 5), window(1, 0.6), window(2, 1.0)]);
    expect(table).toContain('| pipeline | 4 | 1.00 | 0.250 | engine 0.80, ingress 0.20 |');
  });

  it('finds this process among the live ones in /proc and charges it to its label', () => {
    const snap = cpuSnapshot(new Map([[process.pid, 'me']]));
    expect(snap.seconds.get('me')).toBeGreaterThan(0);
  });
});
