/**
 * The pipeline benchmark's arithmetic and output, no I/O: percentiles, whether a window's backlog
 * stayed bounded, medians over rounds, the ceiling of a series, the table and the SVG chart. Kept
 * apart from bench/pipeline.ts so it can be unit tested and read on its own.
 */

/** Latency percentiles of one window, in milliseconds. */
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** A series sampled once a second during a window (consumer lag, sagas in flight). */
export interface Trend {
  max: number;
  final: number;
  /** Least-squares growth over the window's last two thirds, per second. */
  slopePerSecond: number;
}

/** One measured window: one series at one rate in one round. */
export interface WindowResult {
  series: string;
  rate: number;
  round: number;
  windowSeconds: number;
  /** Orders (or bare workflows) sent, and at what rate they actually went out. */
  sent: number;
  sendRate: number;
  /** Of those, how many closed in Temporal (within the drain time after the window). */
  closed: number;
  /** The rate at which they closed: (closed - 1) / (last close - first close). */
  completionRate: number;
  /** occurredAt (or the scheduled start) to the workflow's close time in Temporal. */
  toClosedMs: Percentiles | null;
  /** occurredAt to `order.confirmed` consumed from Kafka; null for the engine. */
  toConfirmedMs: Percentiles | null;
  /** Ingress consumer group lag (records), sampled each second; null for the engine. */
  lag: Trend | null;
  /** Sent but not yet finished, sampled each second. */
  inFlight: Trend;
  bounded: boolean;
  /**
   * Cores each component used from the window's first send to the end of its drain (cpu-accounting.ts):
   * role processes by name, the engine, the stack's servers, the benchmark itself. Absent in older runs.
   */
  cpu?: Record<string, number>;
  errors: { deadLetters: number; notClosed: number; notCompleted: number; unexpectedOutcome: number };
}

/** Median and range of one figure over the rounds of a rate. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface RateSummary {
  series: string;
  rate: number;
  rounds: number;
  completionRate: Spread;
  p50: Spread;
  p95: Spread;
  p99: Spread;
  confirmedP99: Spread | null;
  lagMax: Spread | null;
  /** Bounded in a majority of its rounds. */
  bounded: boolean;
  errors: number;
}

export interface SeriesSummary {
  series: string;
  rates: RateSummary[];
  /** Highest rate that, with every rate below it, stayed bounded with p99 ≤ 2× the lowest rate's; null if none. */
  ceiling: number | null;
}

/** Nearest-rank percentile of `xs` (unsorted); NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function percentiles(xs: readonly number[]): Percentiles | null {
  if (!xs.length) return null;
  return { p50: percentile(xs, 50), p95: percentile(xs, 95), p99: percentile(xs, 99), max: percentile(xs, 100) };
}

/**
 * Max, last value and growth of a once-a-second series. The first third is left out of the slope:
 * the pipeline fills up there at any rate, and only growth after that means it cannot keep up.
 */
export function trend(samples: readonly number[]): Trend {
  if (!samples.length) return { max: 0, final: 0, slopePerSecond: 0 };
  const tail = samples.slice(Math.floor(samples.length / 3));
  const n = tail.length;
  const meanX = (n - 1) / 2;
  const meanY = tail.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  tail.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return { max: Math.max(...samples), final: samples[samples.length - 1]!, slopePerSecond: den ? num / den : 0 };
}

/**
 * A backlog is bounded when it ends below one second's worth of work, or grows by less than a tenth
 * of the offered rate per second over the window's last two thirds (a queue that keeps up wobbles
 * around a level; one that cannot grows by the shortfall, rate minus capacity, every second).
 */
export function isBounded(t: Trend, rate: number): boolean {
  return t.final <= rate || t.slopePerSecond <= 0.1 * rate;
}

/** The median proper: with an even count, the mean of the two middle values (two rounds give their mean). */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function spread(xs: readonly number[]): Spread {
  const finite = xs.filter((x) => Number.isFinite(x));
  if (!finite.length) return { median: NaN, min: NaN, max: NaN };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) };
}

/** Medians with min–max over rounds, per series and rate, and each series' ceiling. */
export function summarize(windows: readonly WindowResult[]): SeriesSummary[] {
  const seriesNames = [...new Set(windows.map((w) => w.series))];
  return seriesNames.map((series) => {
    const mine = windows.filter((w) => w.series === series);
    const rates = [...new Set(mine.map((w) => w.rate))].sort((a, b) => a - b);
    const summaries = rates.map((rate): RateSummary => {
      const ws = mine.filter((w) => w.rate === rate);
      const confirmed = ws.map((w) => w.toConfirmedMs?.p99 ?? NaN);
      const lags = ws.map((w) => w.lag?.max ?? NaN);
      return {
        series,
        rate,
        rounds: ws.length,
        completionRate: spread(ws.map((w) => w.completionRate)),
        p50: spread(ws.map((w) => w.toClosedMs?.p50 ?? NaN)),
        p95: spread(ws.map((w) => w.toClosedMs?.p95 ?? NaN)),
        p99: spread(ws.map((w) => w.toClosedMs?.p99 ?? NaN)),
        confirmedP99: confirmed.some(Number.isFinite) ? spread(confirmed) : null,
        lagMax: lags.some(Number.isFinite) ? spread(lags) : null,
        bounded: ws.filter((w) => w.bounded).length * 2 > ws.length,
        errors: ws.reduce(
          (n, w) => n + w.errors.deadLetters + w.errors.notClosed + w.errors.notCompleted + w.errors.unexpectedOutcome,
          0,
        ),
      };
    });
    return { series, rates: summaries, ceiling: ceilingOf(summaries) };
  });
}

/**
 * The ceiling: the highest rate whose backlog stayed bounded and whose median p99 stayed within 2×
 * the lowest rate's, every lower rate passing too (a rate that passes above one that failed is
 * noise, not headroom).
 */
export function ceilingOf(rates: readonly RateSummary[]): number | null {
  const sorted = [...rates].sort((a, b) => a.rate - b.rate);
  const base = sorted[0]?.p99.median;
  if (base === undefined || !Number.isFinite(base)) return null;
  let ceiling: number | null = null;
  for (const r of sorted) {
    if (!r.bounded || !(r.p99.median <= 2 * base)) break;
    ceiling = r.rate;
  }
  return ceiling;
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const fmtSpread = (s: Spread | null, digits = 0) =>
  s && Number.isFinite(s.median)
    ? s.min === s.max
      ? fmt(s.median, digits)
      : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`
    : '–';

/** The Markdown table of every series and rate, then ceilings and pipeline/engine ratios. */
export function renderTable(summaries: readonly SeriesSummary[], engineSeries = 'engine'): string {
  const lines = [
    '| series | offered /s | completed /s | p50 ms | p95 ms | p99 ms | p99 to order.confirmed ms | max lag | bounded | errors |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const s of summaries) {
    for (const r of s.rates) {
      lines.push(
        `| ${s.series} | ${r.rate} | ${fmtSpread(r.completionRate, 1)} | ${fmtSpread(r.p50)} | ${fmtSpread(r.p95)} | ` +
          `${fmtSpread(r.p99)} | ${fmtSpread(r.confirmedP99)} | ${fmtSpread(r.lagMax)} | ${r.bounded ? 'yes' : 'NO'} | ${r.errors} |`,
      );
    }
  }
  lines.push('', 'medians over rounds, (min–max) when rounds differ; latency from occurredAt to the saga closed');
  for (const s of summaries) lines.push(`ceiling ${s.series}: ${s.ceiling ?? 'none'} /s`);
  const engine = summaries.find((s) => s.series === engineSeries);
  for (const s of summaries) {
    if (!engine || s === engine) continue;
    const perRate = s.rates
      .map((r) => {
        const e = engine.rates.find((x) => x.rate === r.rate);
        if (!e) return undefined;
        return `${r.rate}/s: completed ${fmt(r.completionRate.median / e.completionRate.median, 2)}, p99 ${fmt(r.p99.median / e.p99.median, 2)}`;
      })
      .filter(Boolean);
    if (perRate.length) lines.push(`${s.series}/${engineSeries} ${perRate.join('; ')}`);
    if (s.ceiling !== null && engine.ceiling) {
      lines.push(`ceiling ratio ${s.series}/${engineSeries}: ${fmt(s.ceiling / engine.ceiling, 2)}`);
    }
  }
  return lines.join('\n');
}

/**
 * Where the cores went, per series and rate: each component's median cores over rounds (windows
 * measured before CPU accounting existed are skipped), and the CPU seconds per completed order.
 */
export function renderCpuTable(windows: readonly WindowResult[]): string {
  const measured = windows.filter((w) => w.cpu && w.round > 0);
  if (!measured.length) return '';
  const keys = [...new Set(measured.map((w) => `${w.series}|${w.rate}`))];
  const lines = [
    '| series | offered /s | cores in all | CPU s per order | cores by component (median over rounds) |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const key of keys) {
    const ws = measured.filter((w) => `${w.series}|${w.rate}` === key);
    const components = [...new Set(ws.flatMap((w) => Object.keys(w.cpu!)))];
    const byComponent = components
      .map((c) => [c, median(ws.map((w) => w.cpu![c] ?? 0))] as const)
      .filter(([, cores]) => cores >= 0.02)
      .sort((a, b) => b[1] - a[1]);
    const totals = ws.map((w) => Object.values(w.cpu!).reduce((a, b) => a + b, 0));
    const total = median(totals);
    const perOrder = median(totals.map((cores, i) => cores / ws[i]!.completionRate));
    const [series, rate] = key.split('|');
    lines.push(
      `| ${series} | ${rate} | ${fmt(total, 2)} | ${fmt(perOrder, 3)} | ${byComponent.map(([c, n]) => `${c} ${fmt(n, 2)}`).join(', ')} |`,
    );
  }
  return lines.join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/**
 * Latency (log scale) against offered rate: p99 solid with its min–max over rounds as a bar, p50
 * dashed, one colour per series; the ceilings marked. Plain SVG, written by hand: no chart library
 * for one picture.
 */
export function renderSvg(summaries: readonly SeriesSummary[], title: string): string {
  const W = 760;
  const H = 440;
  const m = { left: 70, right: 190, top: 40, bottom: 50 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const rates = summaries.flatMap((s) => s.rates.map((r) => r.rate));
  const values = summaries
    .flatMap((s) => s.rates.flatMap((r) => [r.p50.min, r.p99.max]))
    .filter((v) => Number.isFinite(v) && v > 0);
  const xMax = Math.max(1, ...rates);
  const yMin = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...values, 100))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...values, yMin * 10)));
  const x = (rate: number) => m.left + (rate / xMax) * pw;
  const y = (ms: number) =>
    m.top + ph - ((Math.log10(Math.max(ms, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let d = yMin; d <= yMax; d *= 10) {
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`,
      `<text x="${m.left - 6}" y="${y(d) + 4}" text-anchor="end">${d >= 1000 ? `${d / 1000} s` : `${d} ms`}</text>`,
    );
  }
  for (const r of [...new Set(rates)].sort((a, b) => a - b)) {
    out.push(
      `<line x1="${x(r)}" x2="${x(r)}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#333"/>`,
      `<text x="${x(r)}" y="${m.top + ph + 18}" text-anchor="middle">${r}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle">offered rate (orders or workflows per second)</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">latency to saga closed (log)</text>`,
  );
  summaries.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = (pick: (r: RateSummary) => number) =>
      s.rates
        .filter((r) => Number.isFinite(pick(r)))
        .map((r) => `${x(r.rate).toFixed(1)},${y(pick(r)).toFixed(1)}`)
        .join(' ');
    out.push(`<polyline points="${pts((r) => r.p99.median)}" fill="none" stroke="${color}" stroke-width="2"/>`);
    out.push(
      `<polyline points="${pts((r) => r.p50.median)}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 4"/>`,
    );
    for (const r of s.rates) {
      if (!Number.isFinite(r.p99.median)) continue;
      out.push(
        `<line x1="${x(r.rate)}" x2="${x(r.rate)}" y1="${y(r.p99.min)}" y2="${y(r.p99.max)}" stroke="${color}" stroke-width="1"/>`,
        `<circle cx="${x(r.rate)}" cy="${y(r.p99.median)}" r="3" fill="${r.bounded ? color : 'white'}" stroke="${color}"/>`,
      );
    }
    if (s.ceiling !== null) {
      out.push(
        `<line x1="${x(s.ceiling)}" x2="${x(s.ceiling)}" y1="${m.top}" y2="${m.top + ph}" stroke="${color}" stroke-dasharray="2 3"/>`,
      );
    }
    const ly = m.top + 10 + i * 44;
    const lx = m.left + pw + 14;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${esc(s.series)} p99</text>`,
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly + 16}" y2="${ly + 16}" stroke="${color}" stroke-dasharray="5 4"/>`,
      `<text x="${lx + 30}" y="${ly + 20}">p50, ceiling ${s.ceiling ?? 'none'}</text>`,
    );
  });
  out.push(
    `<text x="${m.left + pw + 14}" y="${m.top + ph}" font-size="10" fill="#555">hollow: backlog grew</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
