import { z } from 'zod';

import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../config/stack-config';
import type { ServiceName } from '../shared/saga-contract';

/**
 * Owners of a PostgreSQL schema: the four services, plus the simulated card gateway, which stands
 * for an external company and so keeps its ledger apart from the payments service's own data.
 */
export const DB_OWNERS = ['orders', 'inventory', 'payments', 'notifications', 'card_gateway'] as const;
export type DbOwner = (typeof DB_OWNERS)[number];

export type ServiceDbOwner = ServiceName & DbOwner;

const secret = z.string().min(8, 'must be at least 8 characters');
const dbEnvSchema = z.object({
  KTS_DB_PASSWORD_ORDERS: secret.default('orders-dev-password'),
  KTS_DB_PASSWORD_INVENTORY: secret.default('inventory-dev-password'),
  KTS_DB_PASSWORD_PAYMENTS: secret.default('payments-dev-password'),
  KTS_DB_PASSWORD_NOTIFICATIONS: secret.default('notifications-dev-password'),
  KTS_DB_PASSWORD_CARD_GATEWAY: secret.default('card-gateway-dev-password'),
  KTS_DB_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
});

export interface DbOwnerConfig {
  schema: DbOwner;
  /** Login role that owns the schema and can touch nothing else. */
  role: string;
  password: string;
  url: string;
}

export interface DbConfig {
  /** Superuser connection, used only by the migration tool to create roles and schemas. */
  adminUrl: string;
  owners: Record<DbOwner, DbOwnerConfig>;
  poolSize: number;
}

/** Parses database settings once from the environment, failing fast with a readable message. */
export function loadDbConfig(env: NodeJS.ProcessEnv = process.env): DbConfig {
  const parsed = dbEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid database settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  const stack = loadStackConfig(env);
  const adminUrl = stackEndpoints(stack).postgresUrl;
  const passwords: Record<DbOwner, string> = {
    orders: e.KTS_DB_PASSWORD_ORDERS,
    inventory: e.KTS_DB_PASSWORD_INVENTORY,
    payments: e.KTS_DB_PASSWORD_PAYMENTS,
    notifications: e.KTS_DB_PASSWORD_NOTIFICATIONS,
    card_gateway: e.KTS_DB_PASSWORD_CARD_GATEWAY,
  };
  const owners = Object.fromEntries(
    DB_OWNERS.map((schema) => {
      const role = `kts_${schema}`;
      const url = new URL(adminUrl);
      url.username = role;
      url.password = passwords[schema];
      return [schema, { schema, role, password: passwords[schema], url: url.toString() }];
    }),
  ) as Record<DbOwner, DbOwnerConfig>;
  return { adminUrl, owners, poolSize: e.KTS_DB_POOL_SIZE };
}
