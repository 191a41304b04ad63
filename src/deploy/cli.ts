/**
 * Deploying the saga safely, from a shell or a pipeline:
 *
 *   npm run deploy:check [-- --limit 1000 --since 7d --query "ExecutionStatus = 'Running'"]
 *   npm run histories:record -- --scenario happy-path --version v3 --workflow-id order-123
 *   npm run deploy:promote [-- --build-id 0.2.0-abc1234]
 *
 * Servers come from the same settings as the rest of the app; exit status 1 on any problem found,
 * 2 when a server cannot be asked.
 */
import type { ClientOptions } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Command, InvalidArgumentError } from 'commander';

import { createRegistryClient } from '../config/clients';
import { loadSettings } from '../config/settings';
import type { DeployProblem } from './deploy-check';
import { runDeployCheck, summarize } from './deploy-check';
import { recordRun, recordSelection } from './history-recorder';
import type { DownloadProgress, HistorySelection } from './live-histories';
import { parseSince } from './live-histories';
import { currentBuildId, promoteVersion } from './worker-deployment';

let parsedTargets: ReturnType<typeof parseTargets> | undefined;

/** The servers this command talks to, from the app's settings (the saga role's: its deployment too), parsed once. */
function parseTargets() {
  const settings = loadSettings(['saga'], process.env, { refuseForeignCredentials: false });
  return {
    settings,
    temporalAddress: settings.temporal.connection.address,
    namespace: settings.temporal.namespace,
    sagaTaskQueue: settings.common.names.taskQueues.saga,
  };
}

function targets() {
  return (parsedTargets ??= parseTargets());
}

/** A prerequisite the command cannot do without; printed as one line, exit status 2. */
class Unreachable extends Error {}

async function connectTemporal(): Promise<{ client: Client; close: () => Promise<void> }> {
  const t = targets();
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...t.settings.temporal.connection, connectTimeout: 5000 });
  } catch (err) {
    throw new Unreachable(
      `Temporal at ${t.temporalAddress} is unreachable (${(err as Error).message}): start it (npm run stack -- up) or point the Temporal settings at your cluster`,
    );
  }
  const options: ClientOptions = { connection, namespace: t.namespace };
  return { client: new Client(options), close: () => connection.close() };
}

function sinceOption(v: string): Date {
  const at = parseSince(v);
  if (!at) throw new InvalidArgumentError('expected 30m, 24h, 7d or an ISO date-time');
  return at;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
}

/**
 * What to replay. By default only the saga worker's task queue: that is where the runs this build
 * takes over live; other queues may run other code under the same type name (tests' stub sagas).
 */
function selectionFrom(o: {
  limit?: number;
  since?: Date;
  query?: string;
  taskQueue?: string;
  anyTaskQueue?: boolean;
}): HistorySelection {
  const taskQueue = o.anyTaskQueue ? undefined : (o.taskQueue ?? targets().sagaTaskQueue);
  return { limit: o.limit, since: o.since, query: o.query, taskQueue };
}

/** Download progress on stderr: one rewritten line on a terminal, an occasional line in a pipeline's log. */
function progressPrinter() {
  const tty = process.stderr.isTTY;
  let lastLine = Date.now();
  let shown = false;
  const text = (p: DownloadProgress) =>
    `downloading histories: ${p.downloaded} downloaded of ${p.listed} listed${p.gone ? `, ${p.gone} gone` : ''}`;
  return {
    update(p: DownloadProgress) {
      const now = Date.now();
      if (tty) {
        if (now - lastLine < 100) return;
        process.stderr.write(`\r${text(p)}\u001b[K`);
        shown = true;
      } else {
        // A pipeline's log: a line every few seconds is progress enough.
        if (now - lastLine < 3000) return;
        process.stderr.write(`${text(p)}\n`);
      }
      lastLine = now;
    },
    /** Clears the live line before a report line goes out. */
    clear() {
      if (tty && shown) process.stderr.write('\r\u001b[K');
      shown = false;
    },
  };
}

function problemLine(p: DeployProblem): string {
  return `✖ ${p.type} ${p.target}: ${p.message}`;
}

const program = new Command('deploy').description('Pre-deploy checks, replay fixtures and worker versions of the saga');

program
  .command('check')
  .description(
    'replay the histories of recent orderSaga runs (open and closed) against this code, check schemas/ against the registry (BACKWARD) and the generated event types',
  )
  .option('--limit <n>', 'at most this many runs, newest first', positiveInt, 1000)
  .option('--since <when>', 'only runs started since (30m, 24h, 7d or an ISO date-time)', (v) => sinceOption(v))
  .option('--query <visibility query>', 'extra visibility filter, e.g. "ExecutionStatus = \'Running\'"')
  .option('--task-queue <name>', "the saga worker's task queue (default: the saga queue of KTS_SCOPE, as the worker)")
  .option('--any-task-queue', 'runs of orderSaga on every task queue (e.g. a test server full of variants)')
  .option('--workflows <path>', 'check another workflow module than workflows/index.ts')
  .option('--schemas <dir>', 'check another schema folder than schemas/')
  .option('--topic-prefix <prefix>', 'prefix of the topics whose value subjects are checked', '')
  .option('--no-replay', 'skip the history replay')
  .option('--no-schemas', 'skip the registry check')
  .option('--no-codegen', 'skip the generated types check')
  .action(
    async (o: {
      limit: number;
      since?: Date;
      query?: string;
      taskQueue?: string;
      anyTaskQueue?: boolean;
      workflows?: string;
      /** commander keeps --schemas <dir> and --no-schemas under one key: a folder, or false to skip. */
      schemas: string | boolean;
      topicPrefix: string;
      replay: boolean;
      codegen: boolean;
    }) => {
      const schemasOpt = o.schemas;
      // Each failed replay is one report line; the SDK core's own warning about it would double it.
      Runtime.install({
        logger: new DefaultLogger('ERROR'),
        telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
      });
      const temporal = o.replay ? await connectTemporal() : undefined;
      const registry = createRegistryClient(targets().settings.registry);
      const progress = progressPrinter();
      try {
        const report = await runDeployCheck({
          client: temporal?.client as Client,
          registry,
          selection: selectionFrom(o),
          workflowsPath: o.workflows,
          schemasDir: typeof schemasOpt === 'string' ? schemasOpt : undefined,
          topicPrefix: o.topicPrefix,
          skip: { replay: !o.replay, schemas: schemasOpt === false, codegen: !o.codegen },
          onProgress: (p) => progress.update(p),
          onProblem: (p) => {
            progress.clear();
            process.stdout.write(`${problemLine(p)}\n`);
          },
          bundleLogger: new DefaultLogger('ERROR'),
        });
        progress.clear();
        process.stdout.write(`${summarize(report)}\n`);
        process.exitCode = report.problems.length === 0 ? 0 : 1;
      } catch (err) {
        progress.clear();
        if ((err as Error).name === 'RegistryError' && (err as { transient?: boolean }).transient) {
          throw new Unreachable(
            `${(err as Error).message}: start it (npm run stack -- up) or point the registry settings at yours`,
          );
        }
        throw err;
      } finally {
        await temporal?.close();
      }
    },
  );

program
  .command('record')
  .description('save the histories of chosen orderSaga runs as replay fixtures under test/replay/histories/')
  .requiredOption('--scenario <name>', 'what the run shows, e.g. happy-path (part of the file name)')
  .requiredOption('--version <v>', 'the saga version the runs come from, e.g. v3 (part of the file name)')
  .option('--workflow-id <id>', 'one run: this workflow id')
  .option('--run-id <id>', 'with --workflow-id: this run (default: the latest)')
  .option('--query <visibility query>', 'every run this visibility query finds (numbered files)')
  .option('--limit <n>', 'with --query: at most this many runs', positiveInt, 20)
  .option('--dir <dir>', 'where fixtures go (default test/replay/histories)')
  .option('--force', 'replace existing files (only for the version under development)', false)
  .action(
    async (o: {
      scenario: string;
      version: string;
      workflowId?: string;
      runId?: string;
      query?: string;
      limit: number;
      dir?: string;
      force: boolean;
    }) => {
      if (Boolean(o.workflowId) === Boolean(o.query)) throw new InvalidArgumentError('pass --workflow-id or --query');
      const target = { scenario: o.scenario, version: o.version, dir: o.dir, overwrite: o.force };
      const temporal = await connectTemporal();
      try {
        const files = o.workflowId
          ? [await recordRun(temporal.client, { workflowId: o.workflowId, runId: o.runId }, target)]
          : await recordSelection(temporal.client, { query: o.query, limit: o.limit }, target);
        for (const f of files) process.stdout.write(`recorded ${f}\n`);
      } finally {
        await temporal.close();
      }
    },
  );

program
  .command('promote')
  .description("make a build the saga deployment's Current Version: new sagas start on it, running ones stay")
  .option('--build-id <id>', 'the build to promote (default: this checkout, as the worker computes it)')
  .option('--deployment <name>', 'the worker deployment (default: the worker settings)')
  .action(async (o: { buildId?: string; deployment?: string }) => {
    const own = targets().settings.roles.saga.deployment.version;
    const version = { deploymentName: o.deployment ?? own.deploymentName, buildId: o.buildId ?? own.buildId };
    const temporal = await connectTemporal();
    try {
      const before = await currentBuildId(temporal.client, version.deploymentName).catch(() => undefined);
      await promoteVersion(temporal.client, version).catch((err: Error) => {
        throw new Error(
          `cannot promote ${version.deploymentName}.${version.buildId}: ${err.message} (the server knows a build only ` +
            `once its saga workers poll: start them first, KTS_WORKER_VERSIONING=on KTS_WORKER_BUILD_ID=${version.buildId})`,
        );
      });
      process.stdout.write(
        `✔ ${version.deploymentName}: current build ${version.buildId} (was ${before ?? 'none: unversioned workers'})\n`,
      );
    } finally {
      await temporal.close();
    }
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof Unreachable) {
    process.stderr.write(`✖ ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`✖ ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
