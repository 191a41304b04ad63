/**
 * The one settings model of the app. Every variable any process reads is declared here once, with a
 * description (it feeds --help and the README table) and a default taken from the local dev stack.
 * Sections: shared ones (common, temporal, kafka, registry, postgres) and one per role. A process
 * parses the shared sections plus the sections of the roles it runs, once at start-up, and passes
 * the result down; nothing reads process.env after that.
 *
 * Credentials by construction: each role's section holds only that role's PostgreSQL URL, and a
 * process refuses to start when its environment carries a credential of a role it does not run.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { z } from 'zod';

import type { ApiAuthSettings } from '../api/auth-settings';
import { apiAuthEnvSchema, apiAuthSettingsSchema } from '../api/auth-settings';
import type { WorkerDeploymentSettings } from '../deploy/worker-deployment';
import { deploymentEnvSchema, loadWorkerDeploymentSettings } from '../deploy/worker-deployment';
import { SERVICE_NAMES } from '../services/registry';
import type { ScopeNames } from './scope';
import { SCOPE_PATTERN, scopeNames } from './scope';
import type { StackConfig } from './stack-config';
import { formatEnvIssues, loadStackConfig, STACK_SHAPE, stackEndpoints, stackTopicReplication } from './stack-config';

/** Everything a process can run. A process is a list of roles; the main job runs them all. */
export const ROLES = [
  'provision',
  'saga',
  'orders',
  'inventory',
  'payments',
  'notifications',
  'ingress',
  'api',
  'eventStore',
  'outboxCleaner',
  'loyalty',
] as const;
export type Role = (typeof ROLES)[number];

/** The roles whose worker runs on a task queue of the saga. */
export const WORKER_ROLES = ['saga', ...SERVICE_NAMES] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

export type Env = Readonly<Record<string, string | undefined>>;

// ---------------------------------------------------------------------------------------------
// Variable shapes. `describe` is the text of --help and of the README table; a default shown as
// `dev stack` is computed from the stack section (its host and ports), never a constant.

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const ms = int(1, 600_000);
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const pgUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
  .optional();
const secretPgUrl = (role: string, dbRole: string) =>
  pgUrl.describe(
    `PostgreSQL URL of the ${role} (login role ${dbRole}, which can touch only its own schema). ` +
      `Default: ${dbRole} with its dev password on the dev stack (or PGHOST/PGPORT/PGDATABASE).`,
  );

// Not a schema owner: provisioning grants this role SELECT and DELETE on the four outbox tables and nothing else.
const outboxCleanerPgUrl = pgUrl.describe(
  'PostgreSQL URL of the outbox cleaner (login role kts_outbox_cleaner, which may only read and delete rows of the ' +
    "services' outbox tables). Default: kts_outbox_cleaner with its dev password on the dev stack (or PGHOST/PGPORT/PGDATABASE).",
);

const common = {
  KTS_SCOPE: z
    .string()
    .regex(SCOPE_PATTERN, "lower-case letters, digits, '_' and '-', at most 48")
    .or(z.literal(''))
    .default('')
    .describe(
      'Names one deployment: prefixes every task queue, topic, consumer group, connector, slot and publication. ' +
        'Empty = the production names; tests use a unique scope each.',
    ),
  LOG_LEVEL: z.enum(LEVELS).default('info').describe('Level of the JSON log lines (fatal … trace, or silent).'),
  KTS_METRICS_HOST: z.string().min(1).default('127.0.0.1').describe('Address the /metrics server listens on.'),
  KTS_METRICS_PORT: int(0, 65_535)
    .optional()
    .describe("Port of this process's /metrics server (0 picks a free one). Default: the process's own, see Metrics."),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
    .url()
    .optional()
    .describe('OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces); unset = spans stay in-process.'),
  KTS_TEMPORAL_TRACING: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe(
      "Temporal's OpenTelemetry interceptors in the workers and the ingress's client (workflow and activity " +
        'spans, one trace from the order event through every activity to the outbox rows). auto: on when ' +
        'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, since without it no span leaves the process; they cost about a ' +
        'sixth of saga throughput (BENCHMARKS.md).',
    ),
};

/** Documented here; parsed by @temporalio/envconfig with the SDK's own rules (profiles, TOML file). */
const temporal = {
  TEMPORAL_ADDRESS: z.string().optional().describe('Temporal frontend host:port. Default: the dev stack.'),
  TEMPORAL_NAMESPACE: z.string().optional().describe('Temporal namespace. Default: default.'),
  TEMPORAL_API_KEY: z.string().optional().describe('API key (Temporal Cloud); turns TLS on.'),
  TEMPORAL_TLS: z.string().optional().describe('true/false: TLS to the frontend (on when a TLS file is given).'),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().optional().describe('CA certificate file of the frontend.'),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().optional().describe('Client certificate file (mTLS).'),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().optional().describe('Client private key file (mTLS).'),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional().describe('Server name to verify instead of the address host.'),
  TEMPORAL_PROFILE: z.string().optional().describe('Profile of the TOML config file. Default: default.'),
  TEMPORAL_CONFIG_FILE: z
    .string()
    .optional()
    .describe('TOML client config file. Default: ~/.config/temporalio/temporal.toml when present.'),
};

const SASL = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
const kafka = {
  KTS_KAFKA_BROKERS: z.string().optional().describe('Comma-separated host:port list. Default: the dev stack broker.'),
  KTS_KAFKA_TLS: flag.optional().describe('true: TLS to the brokers (on when a CA or client certificate is given).'),
  KTS_KAFKA_TLS_CA_FILE: z.string().optional().describe("CA certificate file of the brokers' certificates."),
  KTS_KAFKA_TLS_CERT_FILE: z.string().optional().describe('Client certificate file (mTLS).'),
  KTS_KAFKA_TLS_KEY_FILE: z.string().optional().describe('Client private key file (mTLS).'),
  KTS_KAFKA_SASL_MECHANISM: z.enum(SASL).optional().describe('SASL mechanism: plain, scram-sha-256 or scram-sha-512.'),
  KTS_KAFKA_SASL_USERNAME: z.string().optional().describe('SASL user name.'),
  KTS_KAFKA_SASL_PASSWORD: z.string().optional().describe('SASL password.'),
};

const registry = {
  KTS_REGISTRY_URL: z
    .url()
    .optional()
    .describe('Confluent-compatible schema registry base URL. Default: the dev stack Apicurio /apis/ccompat/v7.'),
  KTS_REGISTRY_USERNAME: z.string().optional().describe('Registry basic-auth user.'),
  KTS_REGISTRY_PASSWORD: z.string().optional().describe('Registry basic-auth password.'),
  KTS_REGISTRY_CA_FILE: z.string().optional().describe('CA certificate file of an https registry.'),
};

const SSLMODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
const postgres = {
  KTS_PG_SSLMODE: z
    .enum(SSLMODES)
    .optional()
    .describe(
      'TLS to PostgreSQL: disable, prefer, require, verify-ca, verify-full. Fallback: PGSSLMODE; default disable.',
    ),
  KTS_PG_SSLROOTCERT: z
    .string()
    .optional()
    .describe('CA certificate file for verify-ca/verify-full. Fallback: PGSSLROOTCERT.'),
  KTS_PG_POOL_SIZE: int(1, 100).default(10).describe('Connections per pool.'),
  PGSSLMODE: z.enum(SSLMODES).optional().describe('Standard libpq name, used when KTS_PG_SSLMODE is unset.'),
  PGSSLROOTCERT: z.string().optional().describe('Standard libpq name, used when KTS_PG_SSLROOTCERT is unset.'),
  PGHOST: z.string().optional().describe('Host of the default role URLs. Default: the dev stack.'),
  PGPORT: int(1, 65_535).optional().describe('Port of the default role URLs. Default: the dev stack.'),
  PGDATABASE: z.string().optional().describe('Database of the default role URLs. Default: postgres.'),
};

const rate = z.coerce.number().min(0).max(1);
/** A WAL size as PostgreSQL writes it (`4GB`, `512MB`, `-1` for unlimited), parsed to megabytes. */
const walSize = z
  .string()
  .trim()
  .regex(/^(-1|[1-9][0-9]*\s*(MB|GB|TB))$/i, 'a size like 4GB or 512MB (MB, GB, TB), or -1 for unlimited')
  .transform((v) => {
    const m = /^([0-9]+)\s*(MB|GB|TB)$/i.exec(v);
    if (!m) return -1;
    return Number(m[1]) * { MB: 1, GB: 1024, TB: 1024 * 1024 }[m[2]!.toUpperCase() as 'MB' | 'GB' | 'TB'];
  });
const gatewayMs = int(0, 600_000);

/** Sections of the roles. Each holds its own credential and nothing of another role. */
const roleShapes = {
  provision: {
    KTS_PG_ADMIN_URL: pgUrl.describe(
      'Superuser URL: creates the roles and schemas and applies migrations (provisioning only). ' +
        'Fallback: PGUSER/PGPASSWORD on the default host; default the dev stack superuser.',
    ),
    PGUSER: z.string().optional().describe('Standard libpq name: the admin user when KTS_PG_ADMIN_URL is unset.'),
    PGPASSWORD: z
      .string()
      .optional()
      .describe('Standard libpq name: the admin password when KTS_PG_ADMIN_URL is unset.'),
    KTS_CONNECT_URL: z.url().optional().describe('Kafka Connect REST URL. Default: the dev stack.'),
    KTS_PG_URL_ORDERS: secretPgUrl('orders service', 'kts_orders'),
    KTS_PG_URL_INVENTORY: secretPgUrl('inventory service', 'kts_inventory'),
    KTS_PG_URL_PAYMENTS: secretPgUrl('payments service', 'kts_payments'),
    KTS_PG_URL_NOTIFICATIONS: secretPgUrl('notifications service', 'kts_notifications'),
    KTS_PG_URL_CARD_GATEWAY: secretPgUrl('simulated card gateway', 'kts_card_gateway'),
    KTS_PG_URL_INGRESS: secretPgUrl('ingress ledger', 'kts_ingress'),
    KTS_PG_URL_EVENT_STORE: secretPgUrl('event store', 'kts_event_store'),
    KTS_PG_URL_LOYALTY: secretPgUrl('loyalty service', 'kts_loyalty'),
    KTS_PG_URL_CDC: secretPgUrl('CDC heartbeat schema', 'kts_cdc'),
    KTS_PG_URL_OUTBOX_CLEANER: outboxCleanerPgUrl,
    KTS_TOPIC_REPLICATION_FACTOR: int(1, 16)
      .optional()
      .describe(
        'Replication factor of the topics provisioning creates (and of those Debezium creates). ' +
          "Default: the dev stack's, 1, or 3 with KTS_STACK_KAFKA_BROKERS=3.",
      ),
    KTS_TOPIC_MIN_INSYNC_REPLICAS: int(1, 16)
      .optional()
      .describe(
        'min.insync.replicas of those topics: replicas that must hold a write before acks=all succeeds. ' +
          'Default: 2 when the replication factor is 3 or more, else 1.',
      ),
    KTS_ORDER_TOPIC_PARTITIONS: int(1, 1000)
      .default(6)
      .describe('Partitions of order.placed / order.cancelled: how many orders the ingress handles side by side.'),
    KTS_DOMAIN_TOPIC_PARTITIONS: int(1, 1000).default(3).describe('Partitions of the domain event topics.'),
    KTS_PG_MAX_SLOT_WAL_KEEP_SIZE: walSize
      .prefault('4GB')
      .describe(
        "PostgreSQL's max_slot_wal_keep_size, set by provisioning (ALTER SYSTEM): the most WAL a stalled " +
          'replication slot may keep before PostgreSQL invalidates it (Debezium must then snapshot again). ' +
          'MB, GB or TB; -1 unlimited.',
      ),
  },
  saga: { ...deploymentEnvSchema.shape },
  orders: { KTS_PG_URL_ORDERS: secretPgUrl('orders service', 'kts_orders') },
  inventory: { KTS_PG_URL_INVENTORY: secretPgUrl('inventory service', 'kts_inventory') },
  payments: {
    KTS_PG_URL_PAYMENTS: secretPgUrl('payments service', 'kts_payments'),
    KTS_PG_URL_CARD_GATEWAY: secretPgUrl('simulated card gateway', 'kts_card_gateway'),
    KTS_GATEWAY_DECLINE_RATE: rate.default(0).describe('Simulated gateway: probability a new charge is declined.'),
    KTS_GATEWAY_TRANSIENT_ERROR_RATE: rate.default(0).describe('Simulated gateway: probability of a transient error.'),
    KTS_GATEWAY_LATENCY_MIN_MS: gatewayMs.default(0).describe('Simulated gateway: least answer time.'),
    KTS_GATEWAY_LATENCY_MAX_MS: gatewayMs.default(0).describe('Simulated gateway: most answer time.'),
  },
  notifications: { KTS_PG_URL_NOTIFICATIONS: secretPgUrl('notifications service', 'kts_notifications') },
  ingress: {
    KTS_PG_URL_INGRESS: secretPgUrl('ingress ledger', 'kts_ingress'),
    KTS_INGRESS_PARTITION_CONCURRENCY: int(1, 256).default(8).describe('Partitions handled side by side.'),
    KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION: int(1, 64)
      .default(4)
      .describe(
        'Records of one partition handled side by side, never two of one order at once; offsets are ' +
          'committed only below the lowest unfinished record. 1: strictly one after another.',
      ),
    KTS_INGRESS_MAX_PAYLOAD_BYTES: int(64, 10_000_000)
      .default(256 * 1024)
      .describe('Larger records are dead-lettered unread.'),
    KTS_INGRESS_BACKOFF_INITIAL_MS: ms.default(250).describe('First pause of a partition after a transient failure.'),
    KTS_INGRESS_BACKOFF_MAX_MS: ms.default(10_000).describe('Longest pause of a partition.'),
    KTS_INGRESS_TEMPORAL_TIMEOUT_MS: ms.default(10_000).describe('Deadline of one Temporal call, retries included.'),
    KTS_INGRESS_LAG_INTERVAL_MS: int(100, 600_000)
      .default(5_000)
      .describe('How often lag, DLQ size and sagas in flight are refreshed for /metrics.'),
    KTS_INGRESS_SESSION_TIMEOUT_MS: int(6_000, 300_000).default(30_000).describe('Kafka consumer session timeout.'),
    KTS_PARKED_ALERT_AFTER_SECONDS: int(1, 31_536_000)
      .default(3_600)
      .describe('A saga parked longer than this counts in kts_sagas_parked_overdue (the SagaParkedTooLong alert).'),
  },
  api: {
    KTS_PG_URL_API: pgUrl.describe(
      'PostgreSQL URL of the Orders API (writes orders and their outbox rows). Default: kts_orders on the dev stack.',
    ),
    KTS_API_HOST: z.string().min(1).default('127.0.0.1').describe('Address the API listens on.'),
    KTS_API_PORT: int(0, 65_535).default(8090).describe('Port the API listens on (0 picks a free one).'),
    KTS_API_BODY_LIMIT_BYTES: int(1024, 10_000_000)
      .default(256 * 1024)
      .describe('Larger request bodies get 413 before parsing.'),
    ...apiAuthEnvSchema.shape,
  },
  eventStore: { KTS_PG_URL_EVENT_STORE: secretPgUrl('event store', 'kts_event_store') },
  outboxCleaner: {
    KTS_PG_URL_OUTBOX_CLEANER: outboxCleanerPgUrl,
    KTS_OUTBOX_CLEAN_INTERVAL_MS: ms.default(10_000).describe('Pause between two outbox clean-up rounds.'),
    KTS_REPLICATION_SLOT_SAMPLE_MS: int(100, 600_000)
      .default(5_000)
      .describe(
        'How often the replication slots (lag, retained WAL, WAL left before invalidation) are read for /metrics.',
      ),
  },
  loyalty: {
    KTS_PG_URL_LOYALTY: secretPgUrl('loyalty service', 'kts_loyalty'),
    KTS_LOYALTY_PARTITION_CONCURRENCY: int(1, 256)
      .default(4)
      .describe('Loyalty consumer: partitions handled side by side.'),
    KTS_LOYALTY_BACKOFF_INITIAL_MS: ms
      .default(250)
      .describe('Loyalty consumer: first pause of a partition after a transient failure.'),
    KTS_LOYALTY_BACKOFF_MAX_MS: ms.default(10_000).describe('Loyalty consumer: longest pause of a partition.'),
    KTS_LOYALTY_SESSION_TIMEOUT_MS: int(6_000, 300_000)
      .default(30_000)
      .describe('Loyalty consumer: Kafka session timeout (how soon the partitions of a dead member move on).'),
  },
} satisfies Record<Role, z.ZodRawShape>;

/** Every section's variables, for --help and the README table. */
export const SECTION_SHAPES = {
  common,
  temporal,
  kafka,
  registry,
  postgres,
  stack: STACK_SHAPE,
  ...roleShapes,
} as const;
export type Section = keyof typeof SECTION_SHAPES;
/** Read by every process; `stack` only as the source of the default endpoints. */
export const SHARED_SECTIONS = ['common', 'temporal', 'kafka', 'registry', 'postgres', 'stack'] as const;

/** Dev passwords of the login roles, the defaults of a machine with zero configuration. */
const DEV_ROLES = {
  orders: ['kts_orders', 'orders-dev-password'],
  inventory: ['kts_inventory', 'inventory-dev-password'],
  payments: ['kts_payments', 'payments-dev-password'],
  notifications: ['kts_notifications', 'notifications-dev-password'],
  card_gateway: ['kts_card_gateway', 'card-gateway-dev-password'],
  ingress: ['kts_ingress', 'ingress-dev-password'],
  event_store: ['kts_event_store', 'event-store-dev-password'],
  loyalty: ['kts_loyalty', 'loyalty-dev-password'],
  cdc: ['kts_cdc', 'cdc-dev-password'],
  outbox_cleaner: ['kts_outbox_cleaner', 'outbox-cleaner-dev-password'],
} as const;
export type DbRole = keyof typeof DEV_ROLES;

// ---------------------------------------------------------------------------------------------
// Parsed settings.

export interface CommonSettings {
  names: ScopeNames;
  logLevel: (typeof LEVELS)[number];
  metrics: { host: string; port?: number };
  otlpTracesEndpoint?: string;
  /**
   * Whether workers and the ingress's client carry Temporal's tracing interceptors (KTS_TEMPORAL_TRACING,
   * auto resolved).
   */
  temporalTracing: boolean;
}

export interface TemporalSettings {
  /** Address, TLS, API key and gRPC metadata: for NativeConnection and (same shape) Connection. */
  connection: NativeConnectionOptions & { address: string };
  namespace: string;
}

export interface KafkaSettings {
  brokers: string[];
  ssl?: ConnectionOptions | true;
  sasl?: { mechanism: (typeof SASL)[number]; username: string; password: string };
}

export interface RegistrySettings {
  url: string;
  username?: string;
  password?: string;
  /** PEM text of the CA of an https registry. */
  ca?: string;
}

export interface PostgresSettings {
  /** pg's `ssl` option for every pool of the app. */
  ssl: false | ConnectionOptions;
  /**
   * The TLS settings as given (libpq names), for a client that takes them by name rather than as
   * Node options: Debezium's JDBC driver, inside Kafka Connect.
   */
  sslmode?: (typeof SSLMODES)[number];
  sslRootCertFile?: string;
  poolSize: number;
}

export interface GatewaySettings {
  declineRate: number;
  transientErrorRate: number;
  latencyMs: { min: number; max: number };
}

export interface RoleSettings {
  provision: {
    adminUrl: string;
    connectUrl: string;
    /** Every login role's URL: provisioning creates the roles with these passwords. */
    roleUrls: Record<DbRole, string>;
    topics: {
      replicationFactor: number;
      minInsyncReplicas: number;
      orderPartitions: number;
      domainPartitions: number;
    };
    /** PostgreSQL's max_slot_wal_keep_size in megabytes (-1: unlimited). */
    maxSlotWalKeepSizeMb: number;
  };
  saga: { deployment: WorkerDeploymentSettings };
  orders: { pgUrl: string };
  inventory: { pgUrl: string };
  payments: { pgUrl: string; cardGatewayPgUrl: string; gateway: GatewaySettings };
  notifications: { pgUrl: string };
  ingress: {
    pgUrl: string;
    partitionConcurrency: number;
    maxInFlightPerPartition: number;
    maxPayloadBytes: number;
    backoff: { initialMs: number; maxMs: number };
    temporalTimeoutMs: number;
    lagIntervalMs: number;
    sessionTimeoutMs: number;
    parkedAlertAfterMs: number;
  };
  api: { pgUrl: string; host: string; port: number; bodyLimitBytes: number; auth: ApiAuthSettings };
  eventStore: { pgUrl: string };
  /** One login role for every outbox: it may read and delete their rows and touch nothing else. */
  outboxCleaner: { pgUrl: string; intervalMs: number; slotSampleMs: number };
  /** The choreographed loyalty service: its own schema and role, its own consumer group. */
  loyalty: {
    pgUrl: string;
    partitionConcurrency: number;
    backoff: { initialMs: number; maxMs: number };
    sessionTimeoutMs: number;
  };
}

/** The settings of a process running roles `R`: the shared sections and exactly those roles' sections. */
export interface Settings<R extends Role = Role> {
  common: CommonSettings;
  temporal: TemporalSettings;
  kafka: KafkaSettings;
  registry: RegistrySettings;
  postgres: PostgresSettings;
  /** The local dev stack's settings: the source of every default address above. */
  stack: StackConfig;
  roles: { readonly [K in R]: RoleSettings[K] };
}

export class SettingsError extends Error {
  override name = 'SettingsError';
  readonly type = 'InvalidSettings';
}

type Shape<S extends Section> = (typeof SECTION_SHAPES)[S];
type Parsed<S extends Section> = z.output<z.ZodObject<Shape<S>>>;

function parseSection<S extends Section>(section: S, env: Env): Parsed<S> {
  const parsed = z.object(SECTION_SHAPES[section]).safeParse(env);
  if (!parsed.success) throw new SettingsError(`invalid ${section} settings: ${formatEnvIssues(parsed.error)}`);
  return parsed.data as unknown as Parsed<S>;
}

const readPem = (file: string, variable: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new SettingsError(`${variable}: cannot read ${file}: ${(err as Error).message}`);
  }
};

/** Where default role URLs point: PGHOST/PGPORT/PGDATABASE, else the dev stack's PostgreSQL. */
function pgLocation(env: Env, stack: StackConfig) {
  const p = parseSection('postgres', env);
  return { host: p.PGHOST ?? stack.host, port: p.PGPORT ?? stack.ports.postgres, database: p.PGDATABASE ?? 'postgres' };
}

function defaultRoleUrl(role: DbRole, env: Env, stack: StackConfig): string {
  const { host, port, database } = pgLocation(env, stack);
  const [user, password] = DEV_ROLES[role];
  return `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
}

function parseCommon(env: Env): CommonSettings {
  const e = parseSection('common', env);
  return {
    names: scopeNames(e.KTS_SCOPE),
    logLevel: e.LOG_LEVEL,
    metrics: { host: e.KTS_METRICS_HOST, port: e.KTS_METRICS_PORT },
    otlpTracesEndpoint: e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    temporalTracing:
      e.KTS_TEMPORAL_TRACING === 'auto'
        ? e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined
        : e.KTS_TEMPORAL_TRACING === 'on',
  };
}

function parseTemporal(env: Env, stack: StackConfig): TemporalSettings {
  parseSection('temporal', env);
  const vars = Object.fromEntries(Object.entries(env).filter((kv): kv is [string, string] => kv[1] !== undefined));
  let loaded;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: vars });
  } catch (err) {
    throw new SettingsError(`invalid temporal settings: ${(err as Error).message}`);
  }
  const address = loaded.connectionOptions.address ?? stackEndpoints(stack).temporalAddress;
  return {
    connection: { ...loaded.connectionOptions, address },
    namespace: loaded.namespace ?? 'default',
  };
}

function parseKafka(env: Env, stack: StackConfig): KafkaSettings {
  const e = parseSection('kafka', env);
  const brokers = e.KTS_KAFKA_BROKERS
    ? e.KTS_KAFKA_BROKERS.split(',')
        .map((b) => b.trim())
        .filter(Boolean)
    : stackEndpoints(stack).kafkaBrokers;
  if (!brokers.length) throw new SettingsError('invalid kafka settings: KTS_KAFKA_BROKERS lists no broker');
  if (Boolean(e.KTS_KAFKA_TLS_CERT_FILE) !== Boolean(e.KTS_KAFKA_TLS_KEY_FILE)) {
    throw new SettingsError(
      'invalid kafka settings: KTS_KAFKA_TLS_CERT_FILE and KTS_KAFKA_TLS_KEY_FILE go together (mTLS)',
    );
  }
  const wantsTls = e.KTS_KAFKA_TLS ?? Boolean(e.KTS_KAFKA_TLS_CA_FILE || e.KTS_KAFKA_TLS_CERT_FILE);
  let ssl: KafkaSettings['ssl'];
  if (wantsTls) {
    const opts: ConnectionOptions = {};
    if (e.KTS_KAFKA_TLS_CA_FILE) opts.ca = readPem(e.KTS_KAFKA_TLS_CA_FILE, 'KTS_KAFKA_TLS_CA_FILE');
    if (e.KTS_KAFKA_TLS_CERT_FILE && e.KTS_KAFKA_TLS_KEY_FILE) {
      opts.cert = readPem(e.KTS_KAFKA_TLS_CERT_FILE, 'KTS_KAFKA_TLS_CERT_FILE');
      opts.key = readPem(e.KTS_KAFKA_TLS_KEY_FILE, 'KTS_KAFKA_TLS_KEY_FILE');
    }
    ssl = Object.keys(opts).length ? opts : true;
  }
  let sasl: KafkaSettings['sasl'];
  if (e.KTS_KAFKA_SASL_MECHANISM) {
    if (!e.KTS_KAFKA_SASL_USERNAME || e.KTS_KAFKA_SASL_PASSWORD === undefined) {
      throw new SettingsError(
        `invalid kafka settings: KTS_KAFKA_SASL_MECHANISM=${e.KTS_KAFKA_SASL_MECHANISM} needs KTS_KAFKA_SASL_USERNAME and KTS_KAFKA_SASL_PASSWORD`,
      );
    }
    sasl = {
      mechanism: e.KTS_KAFKA_SASL_MECHANISM,
      username: e.KTS_KAFKA_SASL_USERNAME,
      password: e.KTS_KAFKA_SASL_PASSWORD,
    };
  } else if (e.KTS_KAFKA_SASL_USERNAME) {
    throw new SettingsError(
      'invalid kafka settings: KTS_KAFKA_SASL_USERNAME is set but KTS_KAFKA_SASL_MECHANISM is not',
    );
  }
  return { brokers, ssl, sasl };
}

function parseRegistry(env: Env, stack: StackConfig): RegistrySettings {
  const e = parseSection('registry', env);
  if (Boolean(e.KTS_REGISTRY_USERNAME) !== (e.KTS_REGISTRY_PASSWORD !== undefined)) {
    throw new SettingsError('invalid registry settings: KTS_REGISTRY_USERNAME and KTS_REGISTRY_PASSWORD go together');
  }
  return {
    url: (e.KTS_REGISTRY_URL ?? stackEndpoints(stack).registryUrl).replace(/\/+$/, ''),
    username: e.KTS_REGISTRY_USERNAME,
    password: e.KTS_REGISTRY_PASSWORD,
    ca: e.KTS_REGISTRY_CA_FILE ? readPem(e.KTS_REGISTRY_CA_FILE, 'KTS_REGISTRY_CA_FILE') : undefined,
  };
}

function parsePostgres(env: Env): PostgresSettings {
  const e = parseSection('postgres', env);
  const mode = e.KTS_PG_SSLMODE ?? e.PGSSLMODE ?? 'disable';
  const caFile = e.KTS_PG_SSLROOTCERT ?? e.PGSSLROOTCERT;
  const ca = caFile ? readPem(caFile, e.KTS_PG_SSLROOTCERT ? 'KTS_PG_SSLROOTCERT' : 'PGSSLROOTCERT') : undefined;
  let ssl: PostgresSettings['ssl'];
  switch (mode) {
    case 'disable':
      ssl = false;
      break;
    // pg has no opportunistic TLS: prefer and require both encrypt without verifying, as libpq's require does.
    case 'prefer':
    case 'require':
      ssl = { rejectUnauthorized: false };
      break;
    case 'verify-ca':
      // The chain must lead to the CA, the host name is not checked (libpq's verify-ca).
      ssl = { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
      break;
    case 'verify-full':
      ssl = { ca, rejectUnauthorized: true };
      break;
  }
  return { ssl, sslmode: mode, sslRootCertFile: caFile, poolSize: e.KTS_PG_POOL_SIZE };
}

/**
 * Replication of the topics provisioning creates: as given, else what the dev stack's Kafka supports
 * (up to 3 replicas; 2 in sync with 3). A min ISR above the replication factor would refuse every
 * acks=all write, so it is refused here.
 */
function topicReplication(
  replicationFactor: number | undefined,
  minInsyncReplicas: number | undefined,
  stack: StackConfig,
): { replicationFactor: number; minInsyncReplicas: number } {
  const rf = replicationFactor ?? stackTopicReplication(stack).replicationFactor;
  const isr = minInsyncReplicas ?? (rf >= 3 ? 2 : 1);
  if (isr > rf) {
    throw new SettingsError(
      `invalid provision settings: KTS_TOPIC_MIN_INSYNC_REPLICAS=${isr} is above the replication factor ${rf}, so no acks=all write could succeed`,
    );
  }
  return { replicationFactor: rf, minInsyncReplicas: isr };
}

function parseRole<R extends Role>(role: R, env: Env, stack: StackConfig): RoleSettings[R] {
  const url = (value: string | undefined, db: DbRole) => value ?? defaultRoleUrl(db, env, stack);
  const build: { [K in Role]: () => RoleSettings[K] } = {
    provision: () => {
      const e = parseSection('provision', env);
      const loc = pgLocation(env, stack);
      const adminUrl =
        e.KTS_PG_ADMIN_URL ??
        (e.PGUSER
          ? `postgres://${encodeURIComponent(e.PGUSER)}:${encodeURIComponent(e.PGPASSWORD ?? '')}@${loc.host}:${loc.port}/${encodeURIComponent(loc.database)}`
          : stackEndpoints(stack).postgresUrl);
      return {
        adminUrl,
        connectUrl: (e.KTS_CONNECT_URL ?? stackEndpoints(stack).connectUrl).replace(/\/+$/, ''),
        roleUrls: {
          orders: url(e.KTS_PG_URL_ORDERS, 'orders'),
          inventory: url(e.KTS_PG_URL_INVENTORY, 'inventory'),
          payments: url(e.KTS_PG_URL_PAYMENTS, 'payments'),
          notifications: url(e.KTS_PG_URL_NOTIFICATIONS, 'notifications'),
          card_gateway: url(e.KTS_PG_URL_CARD_GATEWAY, 'card_gateway'),
          ingress: url(e.KTS_PG_URL_INGRESS, 'ingress'),
          event_store: url(e.KTS_PG_URL_EVENT_STORE, 'event_store'),
          loyalty: url(e.KTS_PG_URL_LOYALTY, 'loyalty'),
          cdc: url(e.KTS_PG_URL_CDC, 'cdc'),
          outbox_cleaner: url(e.KTS_PG_URL_OUTBOX_CLEANER, 'outbox_cleaner'),
        },
        topics: {
          ...topicReplication(e.KTS_TOPIC_REPLICATION_FACTOR, e.KTS_TOPIC_MIN_INSYNC_REPLICAS, stack),
          orderPartitions: e.KTS_ORDER_TOPIC_PARTITIONS,
          domainPartitions: e.KTS_DOMAIN_TOPIC_PARTITIONS,
        },
        maxSlotWalKeepSizeMb: e.KTS_PG_MAX_SLOT_WAL_KEEP_SIZE,
      };
    },
    saga: () => {
      parseSection('saga', env);
      try {
        return { deployment: loadWorkerDeploymentSettings(env) };
      } catch (err) {
        throw new SettingsError((err as Error).message);
      }
    },
    orders: () => ({ pgUrl: url(parseSection('orders', env).KTS_PG_URL_ORDERS, 'orders') }),
    inventory: () => ({ pgUrl: url(parseSection('inventory', env).KTS_PG_URL_INVENTORY, 'inventory') }),
    payments: () => {
      const e = parseSection('payments', env);
      if (e.KTS_GATEWAY_LATENCY_MAX_MS < e.KTS_GATEWAY_LATENCY_MIN_MS) {
        throw new SettingsError(
          'invalid payments settings: KTS_GATEWAY_LATENCY_MAX_MS is below KTS_GATEWAY_LATENCY_MIN_MS',
        );
      }
      return {
        pgUrl: url(e.KTS_PG_URL_PAYMENTS, 'payments'),
        cardGatewayPgUrl: url(e.KTS_PG_URL_CARD_GATEWAY, 'card_gateway'),
        gateway: {
          declineRate: e.KTS_GATEWAY_DECLINE_RATE,
          transientErrorRate: e.KTS_GATEWAY_TRANSIENT_ERROR_RATE,
          latencyMs: { min: e.KTS_GATEWAY_LATENCY_MIN_MS, max: e.KTS_GATEWAY_LATENCY_MAX_MS },
        },
      };
    },
    notifications: () => ({
      pgUrl: url(parseSection('notifications', env).KTS_PG_URL_NOTIFICATIONS, 'notifications'),
    }),
    ingress: () => {
      const e = parseSection('ingress', env);
      if (e.KTS_INGRESS_BACKOFF_MAX_MS < e.KTS_INGRESS_BACKOFF_INITIAL_MS) {
        throw new SettingsError(
          'invalid ingress settings: KTS_INGRESS_BACKOFF_MAX_MS is below KTS_INGRESS_BACKOFF_INITIAL_MS',
        );
      }
      return {
        pgUrl: url(e.KTS_PG_URL_INGRESS, 'ingress'),
        partitionConcurrency: e.KTS_INGRESS_PARTITION_CONCURRENCY,
        maxInFlightPerPartition: e.KTS_INGRESS_MAX_IN_FLIGHT_PER_PARTITION,
        maxPayloadBytes: e.KTS_INGRESS_MAX_PAYLOAD_BYTES,
        backoff: { initialMs: e.KTS_INGRESS_BACKOFF_INITIAL_MS, maxMs: e.KTS_INGRESS_BACKOFF_MAX_MS },
        temporalTimeoutMs: e.KTS_INGRESS_TEMPORAL_TIMEOUT_MS,
        lagIntervalMs: e.KTS_INGRESS_LAG_INTERVAL_MS,
        sessionTimeoutMs: e.KTS_INGRESS_SESSION_TIMEOUT_MS,
        parkedAlertAfterMs: e.KTS_PARKED_ALERT_AFTER_SECONDS * 1000,
      };
    },
    api: () => {
      const e = parseSection('api', env);
      const auth = apiAuthSettingsSchema.safeParse(env);
      if (!auth.success) throw new SettingsError(`invalid api settings: ${formatEnvIssues(auth.error)}`);
      return {
        auth: auth.data,
        pgUrl: e.KTS_PG_URL_API ?? defaultRoleUrl('orders', env, stack),
        host: e.KTS_API_HOST,
        port: e.KTS_API_PORT,
        bodyLimitBytes: e.KTS_API_BODY_LIMIT_BYTES,
      };
    },
    eventStore: () => ({ pgUrl: url(parseSection('eventStore', env).KTS_PG_URL_EVENT_STORE, 'event_store') }),
    loyalty: () => {
      const e = parseSection('loyalty', env);
      if (e.KTS_LOYALTY_BACKOFF_MAX_MS < e.KTS_LOYALTY_BACKOFF_INITIAL_MS) {
        throw new SettingsError(
          'invalid loyalty settings: KTS_LOYALTY_BACKOFF_MAX_MS is below KTS_LOYALTY_BACKOFF_INITIAL_MS',
        );
      }
      return {
        pgUrl: url(e.KTS_PG_URL_LOYALTY, 'loyalty'),
        partitionConcurrency: e.KTS_LOYALTY_PARTITION_CONCURRENCY,
        backoff: { initialMs: e.KTS_LOYALTY_BACKOFF_INITIAL_MS, maxMs: e.KTS_LOYALTY_BACKOFF_MAX_MS },
        sessionTimeoutMs: e.KTS_LOYALTY_SESSION_TIMEOUT_MS,
      };
    },
    outboxCleaner: () => {
      const e = parseSection('outboxCleaner', env);
      return {
        pgUrl: url(e.KTS_PG_URL_OUTBOX_CLEANER, 'outbox_cleaner'),
        intervalMs: e.KTS_OUTBOX_CLEAN_INTERVAL_MS,
        slotSampleMs: e.KTS_REPLICATION_SLOT_SAMPLE_MS,
      };
    },
  };
  return build[role]();
}

/** Variables that carry a credential, and the roles whose sections hold them. */
export function credentialOwners(): Map<string, Role[]> {
  const owners = new Map<string, Role[]>();
  for (const role of ROLES) {
    for (const name of Object.keys(roleShapes[role])) {
      if (!/^KTS_PG_(URL_|ADMIN_URL)/.test(name)) continue;
      owners.set(name, [...(owners.get(name) ?? []), role]);
    }
  }
  return owners;
}

/**
 * Parses the settings of a process that runs `roles`, once. Only the shared sections and those
 * roles' sections are read; a credential variable of any other role in `env` stops the start, so a
 * deployed process cannot even be handed another service's database URL. Command-line tools, run
 * from a developer's shell that may hold everything, pass refuseForeignCredentials: false (they
 * still read only their own sections).
 */
export function loadSettings<R extends Role>(
  roles: readonly R[],
  env: Env,
  { refuseForeignCredentials = true }: { refuseForeignCredentials?: boolean } = {},
): Settings<R> {
  for (const [name, owners] of credentialOwners()) {
    if (!refuseForeignCredentials) break;
    if (env[name] === undefined || owners.some((o) => (roles as readonly Role[]).includes(o))) continue;
    throw new SettingsError(
      `${name} is set, but this process runs ${roles.join(', ') || 'no role'}: only ${owners.join(' or ')} may hold that credential; ` +
        "remove it from this process's environment",
    );
  }
  let stack: StackConfig;
  try {
    stack = loadStackConfig(env);
  } catch (err) {
    throw new SettingsError((err as Error).message);
  }
  const roleSettings = Object.fromEntries(roles.map((r) => [r, parseRole(r, env, stack)])) as {
    [K in R]: RoleSettings[K];
  };
  return {
    common: parseCommon(env),
    temporal: parseTemporal(env, stack),
    kafka: parseKafka(env, stack),
    registry: parseRegistry(env, stack),
    postgres: parsePostgres(env),
    stack,
    roles: roleSettings,
  };
}

/** Login role and password inside a role URL (provisioning creates the role with them). */
export function roleFromUrl(url: string): { role: string; password: string } {
  const u = new URL(url);
  if (!u.username) throw new SettingsError(`the PostgreSQL URL ${redactUrl(url)} names no user`);
  return { role: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/** A URL fit for a log line or an error message: the password replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** The variables of `sections`, with their descriptions and defaults, for --help and the README. */
export function describeVariables(
  sections: readonly Section[],
): { name: string; description: string; default?: string; sections: Section[] }[] {
  const out = new Map<string, { name: string; description: string; default?: string; sections: Section[] }>();
  for (const section of sections) {
    for (const [name, schema] of Object.entries(SECTION_SHAPES[section]) as [string, z.ZodType][]) {
      const known = out.get(name);
      if (known) {
        known.sections.push(section);
        continue;
      }
      // A prefault is a default given as input (a size like 4GB, parsed on its way in).
      const def =
        schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault ? schema.def.defaultValue : undefined;
      out.set(name, {
        name,
        description: schema.description ?? '',
        default: def === undefined || def === '' ? undefined : JSON.stringify(def).replace(/^"|"$/g, ''),
        sections: [section],
      });
    }
  }
  return [...out.values()];
}
