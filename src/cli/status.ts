/**
 * `npm run status`: a live view of the running processes' Prometheus metrics in the terminal (lag
 * per partition, events/s, DLQ size, sagas in flight and outcomes), redrawn every second on a TTY.
 *
 *   npm run status                       # every default metrics port on 127.0.0.1; those that answer
 *   npm run status -- --once             # one snapshot (two scrapes, for the rates), then exit
 *   npm run status -- --url http://127.0.0.1:9465/metrics --url http://127.0.0.1:9466/metrics
 */
import { Command, InvalidArgumentError } from 'commander';

import { METRICS_PORTS } from '../observability/metrics';
import type { Snapshot } from './status-view';
import { renderStatus, takeSnapshot } from './status-view';

interface StatusOptions {
  url: string[];
  once: boolean;
  interval: number;
}

/** Every process's default /metrics URL (see METRICS_PORTS). */
export const DEFAULT_METRICS_URLS = Object.values(METRICS_PORTS).map((p) => `http://127.0.0.1:${p}/metrics`);

function url(value: string, previous: string[] = []): string[] {
  try {
    return [...previous, new URL(value).toString()];
  } catch {
    throw new InvalidArgumentError('must be a URL such as http://127.0.0.1:9465/metrics');
  }
}

function interval(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100) throw new InvalidArgumentError('must be an integer >= 100 (ms)');
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(opts: StatusOptions): Promise<void> {
  const urls = opts.url.length > 0 ? opts.url : DEFAULT_METRICS_URLS;
  const live = !opts.once && process.stdout.isTTY;
  let previous: Snapshot = await takeSnapshot(urls);
  if (!live) {
    // Two scrapes one interval apart, so even a single snapshot shows rates.
    await sleep(opts.interval);
    process.stdout.write(`${renderStatus(await takeSnapshot(urls), previous)}\n`);
    return;
  }
  let stopped = false;
  process.once('SIGINT', () => (stopped = true));
  process.stdout.write('\x1b[?25l'); // hide the cursor while redrawing
  try {
    while (!stopped) {
      await sleep(opts.interval);
      const current = await takeSnapshot(urls);
      // Home, draw, clear the rest: no flicker, and a shorter frame leaves nothing behind.
      process.stdout.write(`\x1b[H${renderStatus(current, previous).replace(/\n/g, '\x1b[K\n')}\x1b[K\n\x1b[J`);
      process.stdout.write('\nCtrl-C to quit');
      previous = current;
    }
  } finally {
    process.stdout.write('\x1b[?25h\n');
  }
}

new Command('status')
  .description(
    'Live view of the processes\u2019 Prometheus metrics: consumer lag per partition, events/s, DLQ size,\n' +
      'sagas in flight and outcomes. Redraws every second on a terminal; --once (or a pipe) prints one snapshot.',
  )
  .option('--url <url>', 'a /metrics URL to scrape (repeat for several; default: every default port)', url, [])
  .option('--once', 'print one snapshot and exit', false)
  .option('--interval <ms>', 'time between scrapes', interval, 1000)
  .addHelpText('after', `\nDefault URLs:\n${DEFAULT_METRICS_URLS.map((u) => `  ${u}`).join('\n')}`)
  .action(run)
  .parseAsync()
  .catch((err: unknown) => {
    console.error(`✖ ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
