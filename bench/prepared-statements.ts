/**
 * Named prepared statements against unnamed ones, through the real code on one PostgreSQL connection:
 *  - ingress: per record, the ledger lookup and the started-saga write (what the ingress sends per
 *    started order);
 *  - saga steps: the orders service's createOrder and confirmOrder (idempotency record, effect, outbox
 *    row, in their transactions), run in an activity context as a worker runs them.
 * The unnamed variant is the same code on a pool that drops the statement names (src/db/prepared.ts),
 * so PostgreSQL parses and plans every statement again, as it did before. Variants alternate within
 * a round, the order rotating every round; each window reports PostgreSQL's backend CPU (from /proc:
 * the server must run on this machine), this process's CPU and the wall time, per unit.
 *
 * Usage: npm run bench -- prepared-statements [units=1000] [--rounds N (3)]
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';

import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type pg from 'pg';

import { createPgPool } from '../src/config/clients';
import { loadSettings } from '../src/config/settings';
import { loadStackConfig, stackEndpoints } from '../src/config/stack-config';
import { EventCodec } from '../src/events/codec';
import { IngressLedger } from '../src/ingress/ledger';
import { RegistryClient } from '../src/kafka/registry-client';
import { OutboxWriter } from '../src/outbox/outbox-writer';
import { createOrdersActivities } from '../src/services/orders/orders-activities';
import { processCpuSeconds } from './cpu-accounting';
import { median } from './pipeline-report';

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--rounds');
const UNITS = Number(positional[0] ?? 1000);
const roundsAt = process.argv.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(process.argv[roundsAt + 1]) : 3;
const VARIANTS = ['named', 'unnamed'] as const;
type Variant = (typeof VARIANTS)[number];
const tag = `bench_prepared_${Date.now().toString(36)}`;

/** Pool calls with the statement name left out: PostgreSQL parses and plans each call anew. */
function withoutNames(pool: pg.Pool): pg.Pool {
  const strip = (q: unknown): unknown => {
    if (typeof q !== 'object' || q === null || !('text' in q)) return q;
    const { text, values } = q as pg.QueryConfig;
    return { text, values };
  };
  const query =
    (client: pg.Pool | pg.PoolClient) =>
    (q: unknown, ...rest: unknown[]) =>
      (client.query.bind(client) as (...a: unknown[]) => unknown)(strip(q), ...rest);
  return new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'query') return query(target);
      if (prop === 'connect') {
        return async () => {
          const client = await target.connect();
          return new Proxy(client, {
            get: (c, p, r) => (p === 'query' ? query(c) : (Reflect.get(c, p, r) as unknown)),
          });
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

function backendCpuMs(pid: number): number {
  const seconds = processCpuSeconds(pid);
  if (seconds === undefined) throw new Error(`PostgreSQL backend ${pid} is not a process of this machine`);
  return seconds * 1000;
}

interface Window {
  backendMs: number;
  processMs: number;
  wallMs: number;
}

/** Runs `units` of `work` on `pool` (one connection) and returns the costs per unit. */
async function timed(pool: pg.Pool, units: number, work: (i: number) => Promise<unknown>): Promise<Window> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = rows[0]!.pid;
  const backend0 = backendCpuMs(pid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < units; i++) await work(i);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    backendMs: (backendCpuMs(pid) - backend0) / units,
    processMs: (cpu.user + cpu.system) / 1000 / units,
    wallMs: wallMs / units,
  };
}

const spread = (xs: number[], digits = 3) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

async function main(): Promise<void> {
  const settings = loadSettings(['ingress', 'orders'], process.env, { refuseForeignCredentials: false });
  const { ingress, orders } = settings.roles;
  const registry = new RegistryClient(stackEndpoints(loadStackConfig()).registryUrl);
  const outbox = new OutboxWriter({ codec: new EventCodec(registry), topicPrefix: tag });
  const activityLogger = new DefaultLogger('ERROR');
  const inActivity = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) =>
    new MockActivityEnvironment(undefined, { logger: activityLogger }).run(fn, ...a);

  const workloads = {
    ingress: {
      url: ingress.pgUrl,
      unit: 'record',
      run: (pool: pg.Pool) => {
        const ledger = new IngressLedger(pool);
        return async (i: number) => {
          const entry = { eventId: randomUUID(), eventType: 'order.placed', orderId: `${tag}-${randomUUID()}` };
          await ledger.lookup(entry.eventId, entry.orderId);
          const at = { topic: `${tag}.order.placed`, partition: 0, offset: String(i) };
          await ledger.recordStartedUnlessCancelPending(entry, `order-${entry.orderId}`, 'STARTED', at);
        };
      },
    },
    'saga steps': {
      url: orders.pgUrl,
      unit: 'createOrder + confirmOrder',
      run: (pool: pg.Pool) => {
        const acts = createOrdersActivities({ db: pool, outbox });
        return async () => {
          const orderId = `${tag}-${randomUUID()}`;
          const order = { orderId, customerId: 'bench', currency: 'EUR', paymentToken: 'tok_visa' };
          const items = [{ sku: 'bench-sku', quantity: 1, unitPriceMinor: 100 }];
          await inActivity(acts.createOrder, { idempotencyKey: `${orderId}/c`, order: { ...order, items } });
          await inActivity(acts.confirmOrder, { idempotencyKey: `${orderId}/k`, orderId });
        };
      },
    },
  };

  process.stdout.write(
    `machine: ${os.cpus().length} cores, Node ${process.version}; ${UNITS} units per window, ${ROUNDS} rounds; ` +
      `load average ${os.loadavg()[0]!.toFixed(2)}\n`,
  );
  const results = new Map<string, Window[]>();
  // Warm-up, not recorded: the JIT, the registry's schema cache and the first connections.
  for (const w of Object.values(workloads)) {
    for (const variant of VARIANTS) {
      const pool = createPgPool(w.url, settings.postgres, { max: 1, applicationName: `kts-${tag}` });
      await timed(pool, Math.min(UNITS, 200), w.run(variant === 'named' ? pool : withoutNames(pool)));
      await pool.end();
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order: Variant[] = round % 2 === 0 ? [...VARIANTS] : [...VARIANTS].reverse();
    for (const [name, w] of Object.entries(workloads)) {
      for (const variant of order) {
        // A fresh connection per window: the named variant pays its one parse per statement inside it.
        const pool = createPgPool(w.url, settings.postgres, { max: 1, applicationName: `kts-${tag}` });
        try {
          const used = variant === 'named' ? pool : withoutNames(pool);
          const window = await timed(pool, UNITS, w.run(used));
          const key = `${name}|${variant}`;
          results.set(key, [...(results.get(key) ?? []), window]);
          process.stdout.write(
            `round ${round + 1}/${ROUNDS} ${name.padEnd(10)} ${variant.padEnd(7)}: PostgreSQL ` +
              `${window.backendMs.toFixed(3)} ms, process ${window.processMs.toFixed(3)} ms, ` +
              `wall ${window.wallMs.toFixed(3)} ms per ${w.unit}\n`,
          );
        } finally {
          await pool.end();
        }
      }
    }
  }
  process.stdout.write('\nmedian (min–max) per unit; ratio = named / unnamed, per round\n');
  for (const name of Object.keys(workloads)) {
    const named = results.get(`${name}|named`)!;
    const unnamed = results.get(`${name}|unnamed`)!;
    for (const field of ['backendMs', 'processMs', 'wallMs'] as const) {
      const ratios = named.map((n, i) => n[field] / unnamed[i]![field]);
      process.stdout.write(
        `${name.padEnd(10)} ${field.padEnd(9)}: named ${spread(named.map((n) => n[field]))}, ` +
          `unnamed ${spread(unnamed.map((u) => u[field]))}, ratio ${spread(ratios, 2)}\n`,
      );
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
