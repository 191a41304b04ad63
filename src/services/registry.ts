/**
 * The one registry of domain services: every other list of the services (task queues, schemas and
 * pools, outbox tables, the connector's table list, migration owners, worker roles, the topics a
 * worker may write) is derived from it. Adding a service means one entry here plus its folder
 * `src/services/<name>/` (activities, worker entry, `migrations/`).
 *
 * Plain data with no imports but the topic names: the saga contract module reads it inside
 * Temporal's workflow sandbox, so no Node builtins and no I/O libraries may appear here.
 */
import { TOPICS } from '../events/topics';

/** A domain topic's name. */
export type Topic = (typeof TOPICS)[keyof typeof TOPICS];

/** What the rest of the system needs to know about one domain service. */
export interface ServiceEntry<Name extends string = string> {
  name: Name;
  /** PostgreSQL schema the service owns; also the key of its role URL in the provisioning settings. */
  schema: Name;
  /** Login role that owns the schema and can touch nothing else. */
  role: `kts_${Name}`;
  /** Key of the service's section in the settings model (the role its worker runs as). */
  settingsKey: Name;
  /** Task queue of the service's activity worker, before any test or benchmark prefix. */
  taskQueue: string;
  /** Topics the service's activities emit through its outbox. */
  topics: readonly Topic[];
  /** Whether it keeps a transactional outbox table, `<schema>.outbox` (published by Debezium). */
  hasOutbox: boolean;
  /** Folder of its `NNN_name.sql` migrations, relative to `src/`. */
  migrations: string;
}

const service = <const Name extends string>(
  name: Name,
  topics: readonly Topic[],
  hasOutbox = true,
): ServiceEntry<Name> => ({
  name,
  schema: name,
  role: `kts_${name}`,
  settingsKey: name,
  taskQueue: name,
  topics,
  hasOutbox,
  migrations: `services/${name}/migrations`,
});

/** Every domain service, in the order the saga first reaches it. */
export const SERVICE_REGISTRY = [
  service('orders', [TOPICS.orderConfirmed, TOPICS.orderFailed, TOPICS.orderParkedDecision]),
  service('inventory', [TOPICS.stockReserved, TOPICS.stockReleased]),
  service('payments', [TOPICS.paymentCaptured, TOPICS.paymentRefunded]),
  service('notifications', [TOPICS.notificationSent]),
] as const;

export type ServiceName = (typeof SERVICE_REGISTRY)[number]['name'];

/** The services' names, in registry order. */
export const SERVICE_NAMES: readonly ServiceName[] = SERVICE_REGISTRY.map((s) => s.name);

/** The registry entry of one service. */
export function serviceEntry(name: ServiceName): ServiceEntry<ServiceName> {
  const entry = SERVICE_REGISTRY.find((s) => s.name === name);
  if (!entry) throw new Error(`unknown service ${String(name)}`);
  return entry;
}

/**
 * A service nobody orchestrates (the article's choreography): it reacts to domain events in a
 * consumer group of its own and publishes what it did through its own outbox. No task queue, no
 * Temporal worker, and the saga knows nothing of it.
 */
export interface ChoreographedServiceEntry<Name extends string = string> {
  name: Name;
  /** PostgreSQL schema the service owns; also the key of its role URL in the provisioning settings. */
  schema: Name;
  role: `kts_${Name}`;
  /** Key of the service's section in the settings model (the role its process runs as). */
  settingsKey: Name;
  /** Canonical topics it consumes, in its own consumer group. */
  consumes: readonly Topic[];
  /** Topics it emits through its outbox. */
  topics: readonly Topic[];
  hasOutbox: true;
  /** Folder of its `NNN_name.sql` migrations, relative to `src/`. */
  migrations: string;
}

/** Every choreographed service. */
export const CHOREOGRAPHED_SERVICES = [
  {
    name: 'loyalty',
    schema: 'loyalty',
    role: 'kts_loyalty',
    settingsKey: 'loyalty',
    // What earns points, and what undoes a confirmed order (and so takes them back).
    consumes: [TOPICS.orderConfirmed, TOPICS.orderFailed, TOPICS.paymentRefunded],
    topics: [TOPICS.loyaltyPointsAwarded, TOPICS.loyaltyPointsRevoked],
    hasOutbox: true,
    migrations: 'services/loyalty/migrations',
  },
] as const satisfies readonly ChoreographedServiceEntry[];

export type ChoreographedServiceName = (typeof CHOREOGRAPHED_SERVICES)[number]['name'];

/** Every domain service that owns a schema: the orchestrated ones, then the choreographed ones. */
export const DOMAIN_SERVICES: readonly (ServiceEntry | ChoreographedServiceEntry)[] = [
  ...SERVICE_REGISTRY,
  ...CHOREOGRAPHED_SERVICES,
];

export type OutboxService = ServiceName | ChoreographedServiceName;

/** The services that keep an outbox table, all with the same structure (`src/outbox/outbox-table.sql`). */
export const OUTBOX_SERVICE_NAMES: readonly OutboxService[] = DOMAIN_SERVICES.filter((s) => s.hasOutbox).map(
  (s) => s.name as OutboxService,
);
