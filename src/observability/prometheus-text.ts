/**
 * Reading the Prometheus text exposition format back: what the `status` command and the metrics
 * tests do with a scraped /metrics body. Only what prom-client writes needs to be understood.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?<labels>.*)\})?\s+(?<value>\S+)(?:\s+\d+)?$/;
const LABEL = /(?<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?<value>(?:[^"\\]|\\.)*)"\s*,?\s*/gy;

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

/** Every sample of a /metrics body; comment and blank lines are skipped, a malformed line throws. */
export function parsePrometheusText(body: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m?.groups) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    const text = m.groups.labels ?? '';
    LABEL.lastIndex = 0;
    let consumed = 0;
    for (let l = LABEL.exec(text); l?.groups; l = LABEL.exec(text)) {
      labels[l.groups.key ?? ''] = unescape(l.groups.value ?? '');
      consumed = LABEL.lastIndex;
    }
    if (consumed !== text.length) throw new Error(`unreadable labels in: ${line}`);
    out.push({ name: m.groups.name ?? '', labels, value: parseValue(m.groups.value ?? '') });
  }
  return out;
}

/** The samples of `name` whose labels include every pair of `labels`. */
export function samplesOf(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the matching samples' values; 0 when none match (a counter never incremented is absent). */
export function sumOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samplesOf(samples, name, labels).reduce((n, s) => n + s.value, 0);
}

/** GETs a /metrics URL and parses it. */
export async function scrape(url: string, timeoutMs = 2_000): Promise<Sample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return parsePrometheusText(await res.text());
}
