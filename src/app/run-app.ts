/**
 * Everything of ours that runs against the stack, in one process for local use: provisioning (the
 * whole plan of `npm run provision`), the orchestrator and the four service workers, the event
 * store, the choreographed loyalty service, the outbox cleaner, the Kafka ingress and the Orders
 * HTTP API. Deployment runs each role
 * as its own process (workers/*.ts, src/ingress/main.ts, …) through the same startRoles.
 */
import type pg from 'pg';

import type { Settings } from '../config/settings';
import type { Metrics } from '../observability/metrics';
import { SERVICE_NAMES } from '../services/registry';
import type { RoleContext, RunningRoles } from './roles';
import { startRoles } from './roles';

/** Every role, in one process: what `npm start` runs. */
export const APP_ROLES = [
  'provision',
  'saga',
  ...SERVICE_NAMES,
  'eventStore',
  // Choreographed: its own consumer group over order.confirmed and what undoes it; the saga never calls it.
  'loyalty',
  'outboxCleaner',
  'ingress',
  'api',
] as const;
export type AppRole = (typeof APP_ROLES)[number];

export interface RunningApp extends RunningRoles {
  /** The inventory service's pool (the demo stocks its catalogue through it). */
  inventoryPool: pg.Pool;
  /** The one registry of the in-process app: the workers and the ingress record into it. */
  metrics: Metrics;
}

/** Starts every role on the running stack; `ctx.onStep` reports progress so the terminal never goes quiet. */
export async function startApp(settings: Settings<AppRole>, ctx: RoleContext): Promise<RunningApp> {
  const running = await startRoles(settings, APP_ROLES, ctx);
  const inventoryPool = running.pools.inventory;
  if (!inventoryPool) throw new Error('the inventory worker opened no pool');
  return { ...running, inventoryPool, metrics: ctx.metrics };
}
