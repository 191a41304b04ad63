import os from 'node:os';
import path from 'node:path';

import { z } from 'zod';

/** Versions of the servers the stack tool fetches; docker-compose.yml pins the same ones. */
export const STACK_VERSIONS = {
  kafka: '4.1.1',
  debezium: '3.6.1.Final',
  apicurio: '3.0.9',
  temporalCli: '1.9.1',
  /** The full Temporal server (private-temporal-server.ts), built with `go install` from the module proxy. */
  temporalServer: '1.32.2',
  /** The Go toolchain that build asks for; the go command fetches it itself. */
  temporalServerGo: 'go1.27.3',
} as const;

const port = z.coerce.number().int().min(1).max(65535);

/**
 * The stack tool's own settings. The app reads them too, but only as the source of its default
 * endpoints (see src/config/settings.ts): set the endpoint variables to point elsewhere.
 */
export const STACK_SHAPE = {
  KTS_STACK_HOST: z
    .string()
    .regex(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, 'must be a loopback address (127.0.0.0/8)')
    .default('127.0.0.1')
    .describe('Loopback address the local stack binds to, and so the host of every default endpoint.'),
  KTS_DATA_DIR: z.string().min(1).optional().describe("The local stack's data, logs and pid files. Default: .stack/."),
  KTS_CACHE_DIR: z
    .string()
    .min(1)
    .optional()
    .describe('Downloads of the local stack. Default: ~/.cache/kafka-temporal-saga.'),
  KTS_PG_PORT: port.default(5432).describe('Local stack PostgreSQL port.'),
  KTS_TEMPORAL_PORT: port.default(7233).describe('Local stack Temporal frontend port.'),
  KTS_TEMPORAL_UI_PORT: port.default(8233).describe('Local stack Temporal Web UI port.'),
  KTS_KAFKA_PORT: port.default(9092).describe('Local stack Kafka broker port.'),
  KTS_KAFKA_CONTROLLER_PORT: port.default(9093).describe('Local stack Kafka controller port.'),
  KTS_STACK_KAFKA_BROKERS: z.coerce
    .number()
    .int()
    .refine((n) => n === 1 || n === 3, 'must be 1 (the dev stack) or 3 (a replicated KRaft cluster)')
    .default(1)
    .describe(
      'Kafka nodes of the local stack (stack up --kafka-brokers): 1, or 3 with replication 3, min ISR 2. ' +
        'Node n takes KTS_KAFKA_PORT and KTS_KAFKA_CONTROLLER_PORT + 2(n-1).',
    ),
  KTS_STACK_TEMPORAL: z
    .enum(['dev', 'server'])
    .default('dev')
    .describe(
      "Temporal of the local stack (stack up --temporal): 'dev', the dev server on SQLite with its Web UI, or " +
        "'server', the full server on the stack's PostgreSQL (built once with go; no Web UI). Its other ports " +
        'lie around KTS_TEMPORAL_PORT as in Temporal: +1, +2, +6, +10 and membership -300 to -294.',
    ),
  KTS_REGISTRY_PORT: port.default(8081).describe('Local stack Apicurio registry port.'),
  KTS_CONNECT_PORT: port.default(8083).describe('Local stack Kafka Connect port.'),
  KTS_PG_PASSWORD: z.string().min(1).default('postgres').describe('Local stack PostgreSQL superuser password.'),
};
const stackEnvSchema = z.object(STACK_SHAPE);

export interface StackConfig {
  /** Data, logs and pid files of this checkout's stack (ignored by git). */
  dataDir: string;
  /** Downloads, shared by every checkout on the machine so a fresh clone starts warm. */
  cacheDir: string;
  /** Loopback address every server of the local stack binds to (KTS_STACK_HOST). */
  host: string;
  ports: {
    postgres: number;
    temporal: number;
    temporalUi: number;
    kafka: number;
    kafkaController: number;
    registry: number;
    connect: number;
  };
  postgres: { user: 'postgres'; password: string; database: 'postgres' };
  /**
   * Kafka nodes (each broker and KRaft controller): 1, the default dev stack, or 3, a replicated
   * cluster. Unset means 1, so a config built by hand for a private single server stays valid.
   */
  kafkaBrokers?: number;
  /** Which Temporal the stack runs (KTS_STACK_TEMPORAL); unset means the dev server. */
  temporalEngine?: 'dev' | 'server';
}

/** Every port one full Temporal server process listens on: four services, each with gRPC and membership. */
export type TemporalServerPorts = Record<
  | 'frontend'
  | 'frontendHttp'
  | 'frontendMembership'
  | 'history'
  | 'historyMembership'
  | 'matching'
  | 'matchingMembership'
  | 'worker'
  | 'workerMembership',
  number
>;

/**
 * The stack's full-server ports, laid out around the frontend port as Temporal's own defaults are
 * around 7233 (history 7234, matching 7235, worker 7239, HTTP 7243, membership 6933–6939), so the
 * default stack matches what Temporal's docs and tools expect.
 */
export function stackTemporalServerPorts(frontend: number): TemporalServerPorts {
  return {
    frontend,
    frontendHttp: frontend + 10,
    frontendMembership: frontend - 300,
    history: frontend + 1,
    historyMembership: frontend - 299,
    matching: frontend + 2,
    matchingMembership: frontend - 298,
    worker: frontend + 6,
    workerMembership: frontend - 294,
  };
}

/**
 * Membership ports go into a smallint column of cluster_membership: one at or above 32768 makes the
 * server fail at start-up with an obscure SQL error, so settings refuse it first.
 */
export const MAX_MEMBERSHIP_PORT = 32767;

/** Port distance between two Kafka nodes of the local stack: node n uses port + 2(n-1). */
export const KAFKA_NODE_PORT_STEP = 2;

/** One Kafka node of the local stack: its id (1-based), client port and controller port. */
export interface KafkaNode {
  id: number;
  port: number;
  controllerPort: number;
}

/** The Kafka nodes of a stack, node 1 on the configured ports and each further one 2 ports up. */
export function kafkaNodes(cfg: Pick<StackConfig, 'ports' | 'kafkaBrokers'>): KafkaNode[] {
  return Array.from({ length: cfg.kafkaBrokers ?? 1 }, (_, i) => ({
    id: i + 1,
    port: cfg.ports.kafka + KAFKA_NODE_PORT_STEP * i,
    controllerPort: cfg.ports.kafkaController + KAFKA_NODE_PORT_STEP * i,
  }));
}

/**
 * Replication the stack's Kafka supports, the default of what provisioning declares: every partition
 * on up to 3 nodes, and with 3 a write needs 2 of them in sync (one node may die without losing an
 * acknowledged record or refusing writes).
 */
export function stackTopicReplication(cfg: Pick<StackConfig, 'kafkaBrokers'>): {
  replicationFactor: number;
  minInsyncReplicas: number;
} {
  const replicationFactor = Math.min(3, cfg.kafkaBrokers ?? 1);
  return { replicationFactor, minInsyncReplicas: replicationFactor >= 3 ? 2 : 1 };
}

/** The repository root, found from this file whether it runs from source (tsx) or from dist/. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (path.basename(dir) === 'src' || path.basename(dir) === 'dist') return path.dirname(dir);
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot locate the repository root from ${__dirname}`);
    dir = parent;
  }
}

/** Human-readable list of zod issues, one per line, naming the variable. */
export function formatEnvIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`).join('; ');
}

/**
 * Parses the stack's settings from the environment once, failing fast with a readable message.
 * Every server binds to one loopback address (KTS_STACK_HOST, default 127.0.0.1); the app's default
 * endpoints are derived from these settings (see src/config/settings.ts), never typed as constants.
 */
export function loadStackConfig(env: NodeJS.ProcessEnv = process.env): StackConfig {
  const parsed = stackEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid stack settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  const ports = {
    postgres: e.KTS_PG_PORT,
    temporal: e.KTS_TEMPORAL_PORT,
    temporalUi: e.KTS_TEMPORAL_UI_PORT,
    kafka: e.KTS_KAFKA_PORT,
    kafkaController: e.KTS_KAFKA_CONTROLLER_PORT,
    registry: e.KTS_REGISTRY_PORT,
    connect: e.KTS_CONNECT_PORT,
  };
  const seen = new Map<number, string>();
  const claims: [string, number][] = Object.entries(ports);
  // Further Kafka nodes take the ports above node 1's: those must be free of every other server too.
  for (const n of kafkaNodes({ ports, kafkaBrokers: e.KTS_STACK_KAFKA_BROKERS }).slice(1)) {
    claims.push([`kafka node ${n.id}`, n.port], [`kafka node ${n.id} controller`, n.controllerPort]);
  }
  if (e.KTS_STACK_TEMPORAL === 'server') {
    // The full server listens on more ports than the frontend: each must be free of every other server.
    for (const [name, value] of Object.entries(stackTemporalServerPorts(ports.temporal))) {
      if (name === 'frontend') continue;
      const membership = name.endsWith('Membership');
      if (value < 1 || value > 65535 || (membership && value > MAX_MEMBERSHIP_PORT)) {
        throw new Error(
          `invalid stack settings: KTS_TEMPORAL_PORT ${ports.temporal} puts the full server's ${name} port at ${value}` +
            ` (membership ports must stay below 32768): choose a KTS_TEMPORAL_PORT from 301 to ${MAX_MEMBERSHIP_PORT + 294}`,
        );
      }
      claims.push([`temporal server ${name}`, value]);
    }
  }
  for (const [name, value] of claims) {
    const other = seen.get(value);
    if (other) throw new Error(`invalid stack settings: ${name} and ${other} both use port ${value}`);
    seen.set(value, name);
  }
  return {
    dataDir: path.resolve(e.KTS_DATA_DIR ?? path.join(repoRoot(), '.stack')),
    cacheDir: path.resolve(e.KTS_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'kafka-temporal-saga')),
    host: e.KTS_STACK_HOST,
    ports,
    postgres: { user: 'postgres', password: e.KTS_PG_PASSWORD, database: 'postgres' },
    kafkaBrokers: e.KTS_STACK_KAFKA_BROKERS,
    temporalEngine: e.KTS_STACK_TEMPORAL,
  };
}

/** Client-side addresses derived from the stack settings, for apps and tests. */
export function stackEndpoints(cfg: StackConfig) {
  const h = cfg.host;
  return {
    postgresUrl: `postgres://${cfg.postgres.user}:${encodeURIComponent(cfg.postgres.password)}@${h}:${cfg.ports.postgres}/${cfg.postgres.database}`,
    temporalAddress: `${h}:${cfg.ports.temporal}`,
    temporalUiUrl: `http://${h}:${cfg.ports.temporalUi}`,
    kafkaBrokers: kafkaNodes(cfg).map((n) => `${h}:${n.port}`),
    registryUrl: `http://${h}:${cfg.ports.registry}/apis/ccompat/v7`,
    connectUrl: `http://${h}:${cfg.ports.connect}`,
  };
}
