import type { ConnectionOptions } from 'node:tls';

import type { PostgresSettings, RoleSettings } from '../config/settings';
import { roleFromUrl } from '../config/settings';
import type { ServiceName } from '../services/registry';
import { SERVICE_NAMES } from '../services/registry';

/**
 * Owners of a PostgreSQL schema whose pools and roles the database config holds: every service of
 * the registry, plus the simulated card gateway, which stands for an external company and so keeps
 * its ledger apart from the payments service's own data.
 */
export type DbOwner = ServiceName | 'card_gateway';
export const DB_OWNERS: readonly DbOwner[] = [...SERVICE_NAMES, 'card_gateway'];

export type ServiceDbOwner = ServiceName & DbOwner;

export interface DbOwnerConfig {
  schema: DbOwner;
  /** Login role that owns the schema and can touch nothing else. */
  role: string;
  password: string;
  url: string;
}

export interface DbConfig {
  /** Superuser connection, used only by provisioning to create roles and schemas. */
  adminUrl: string;
  owners: Record<DbOwner, DbOwnerConfig>;
  poolSize: number;
  /** pg's `ssl` option (from KTS_PG_SSLMODE / KTS_PG_SSLROOTCERT). */
  ssl: false | ConnectionOptions;
}

/**
 * The database view of provisioning: the admin URL and every schema owner's role, password and URL,
 * all taken from the role URLs of the settings (one source for the role and the process using it).
 */
export function dbConfigFromSettings(provision: RoleSettings['provision'], postgres: PostgresSettings): DbConfig {
  const owners = Object.fromEntries(
    DB_OWNERS.map((schema) => {
      const url = provision.roleUrls[schema];
      return [schema, { schema, ...roleFromUrl(url), url }];
    }),
  ) as Record<DbOwner, DbOwnerConfig>;
  return { adminUrl: provision.adminUrl, owners, poolSize: postgres.poolSize, ssl: postgres.ssl };
}
