#!/usr/bin/env node
import fs from 'node:fs';

import { Command } from 'commander';

import { loadStackConfig, STACK_VERSIONS } from '../config/stack-config';
import { buildPlan } from '../provision/plan';
import type { ProvisionReport } from '../provision/run';
import { formatStepLine, runProvision } from '../provision/run';
import { loadProvisionSettings } from '../provision/settings';
import type { ComponentName } from './component';
import { logFile } from './component';
import { run } from './downloads';
import { COMPONENTS, stackDown, stackStatus, stackUp } from './stack';
import { ensureTemporalServerBuild } from './temporal-server-build';

function fail(err: unknown): never {
  // One line that says what is wrong and what to do; stack traces only on request.
  console.error(`✖ ${err instanceof Error ? err.message : String(err)}`);
  if (process.env.KTS_DEBUG && err instanceof Error) console.error(err.stack);
  process.exit(1);
}

interface UpOptions {
  json?: boolean;
  cdc: boolean;
  provision: boolean;
  kafkaBrokers?: string;
  temporal?: string;
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '-' : `${Math.round(bytes / 2 ** 20)} MiB`);

export function buildStackCli(): Command {
  const program = new Command('stack')
    .description('Run the real servers of kafka-temporal-saga as local processes on 127.0.0.1 (no Docker needed).')
    .addHelpText(
      'after',
      `\nComponents: ${COMPONENTS.map((c) => c.name).join(', ')}\nSettings (env): KTS_DATA_DIR, KTS_CACHE_DIR, KTS_PG_PORT, KTS_TEMPORAL_PORT, KTS_TEMPORAL_UI_PORT,\n  KTS_KAFKA_PORT, KTS_KAFKA_CONTROLLER_PORT, KTS_STACK_KAFKA_BROKERS, KTS_STACK_TEMPORAL, KTS_REGISTRY_PORT, KTS_CONNECT_PORT`,
    );

  program
    .command('up')
    .description('download (first run only) and start components, reusing healthy ones')
    .argument('[components...]', 'only these (and what they depend on)')
    .option('--json', 'print the result as JSON')
    .option('--no-provision', 'skip provisioning (npm run provision) after the servers are up')
    .option('--no-cdc', 'provision without the publication and the outbox connector')
    .option(
      '--kafka-brokers <n>',
      'Kafka nodes: 1, or 3 for a replicated KRaft cluster (replication 3, min.insync.replicas 2); same as KTS_STACK_KAFKA_BROKERS',
    )
    .option(
      '--temporal <kind>',
      "'dev' (the dev server on SQLite, with the Web UI) or 'server' (the full server on the stack's PostgreSQL, built with go on first use); same as KTS_STACK_TEMPORAL",
    )
    .action(async (names: string[], opts: UpOptions) => {
      // The flags are the variables for this run: the stack settings and provisioning's defaults
      // (replication of the topics it creates) both read them.
      if (opts.kafkaBrokers !== undefined) process.env.KTS_STACK_KAFKA_BROKERS = opts.kafkaBrokers;
      if (opts.temporal !== undefined) process.env.KTS_STACK_TEMPORAL = opts.temporal;
      const cfg = loadStackConfig();
      const t0 = Date.now();
      const results = await stackUp(cfg, names);
      // Once the whole stack runs, provision it like `npm run provision` (idempotent): the dev stack
      // is this tool's own, so subjects an older build registered out of file order are re-registered
      // in order (their ids are kept). Provisioning needs every server, so a partial `up` skips it.
      let provisioned: ProvisionReport | undefined;
      const all = COMPONENTS.every((c) => results.some((r) => r.name === c.name));
      if (opts.provision && all) {
        // Production names (no scope): the stack's own plan, whatever scope the shell sets.
        const settings = loadProvisionSettings({ ...process.env, KTS_SCOPE: '' });
        const plan = buildPlan({ ...settings.plan, cdc: opts.cdc ? settings.plan.cdc : null });
        provisioned = await runProvision(plan, settings.targets, {
          reorderSubjects: true,
          onProgress: ({ index, total, report }) => {
            if (report && !opts.json) console.log(formatStepLine(index, total, report));
          },
        });
      }
      const cdcStep = provisioned?.steps.find((s) => s.step.kind === 'connector');
      const cdc = cdcStep && { name: cdcStep.step.id.replace(/^connector:/, ''), action: cdcStep.detail.split(',')[0] };
      if (opts.json) {
        console.log(
          JSON.stringify({
            ms: Date.now() - t0,
            results,
            cdc,
            provisioned: provisioned && { changed: provisioned.pending },
          }),
        );
        return;
      }
      console.log(`\nstack ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      for (const r of results) console.log(`  ${r.name.padEnd(9)} ${r.outcome.padEnd(9)} ${r.address}`);
      if (cdc) console.log(`  outbox connector '${cdc.name}': ${cdc.action}, running`);
      if (provisioned)
        console.log(
          `  provisioned: ${provisioned.pending} step(s) changed, ${provisioned.steps.length - provisioned.pending} in place`,
        );
      console.log(`\nlogs: ${cfg.dataDir}/logs   stop: npm run stack -- down`);
      if (cfg.temporalEngine === 'server') {
        console.log(
          'Temporal is the full server on PostgreSQL (no Web UI): set KTS_STACK_TEMPORAL=server for stack status and the tests too',
        );
      }
      if ((cfg.kafkaBrokers ?? 1) > 1) {
        console.log(
          `Kafka runs ${cfg.kafkaBrokers} nodes: set KTS_STACK_KAFKA_BROKERS=${cfg.kafkaBrokers} for the app and provisioning too`,
        );
      }
    });

  program
    .command('status')
    .description('show each component with its address and health')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await stackStatus(loadStackConfig());
      if (opts.json) {
        console.log(JSON.stringify(rows));
      } else {
        for (const r of rows) {
          const who = r.ours ? `pid ${r.pid}` : r.healthy ? 'external' : 'down';
          console.log(
            `${r.healthy ? '●' : '○'} ${r.name.padEnd(9)} ${who.padEnd(10)} ${mb(r.rssBytes).padStart(8)}  ${r.address}\n    ${r.detail}`,
          );
        }
      }
      if (rows.some((r) => !r.healthy)) process.exitCode = 1;
    });

  program
    .command('down')
    .description('stop the processes this tool started (by recorded pid); leaves data in place')
    .action(async () => stackDown(loadStackConfig()));

  program
    .command('build-temporal-server')
    .description(
      `build the full Temporal server ${STACK_VERSIONS.temporalServer} and its SQL tool with go install into the cache (first run only)`,
    )
    .action(async () => {
      const t0 = Date.now();
      const result = await ensureTemporalServerBuild(loadStackConfig().cacheDir, (line) => console.log(`  ${line}`));
      console.log(
        `temporal-server ${STACK_VERSIONS.temporalServer}: ${result === 'hit' ? 'cached' : 'built'} in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
      );
    });

  program
    .command('logs')
    .description("print a component's log")
    .argument('<component>', COMPONENTS.map((c) => c.name).join(' | '))
    .option('-f, --follow', 'keep printing as the log grows')
    .option('-n, --lines <n>', 'last n lines', '100')
    .action(async (name: string, opts: { follow?: boolean; lines: string }) => {
      if (!COMPONENTS.some((c) => c.name === name)) throw new Error(`unknown component '${name}'`);
      const file = logFile(loadStackConfig(), name as ComponentName);
      if (!fs.existsSync(file)) throw new Error(`no log yet at ${file}; run 'npm run stack -- up' first`);
      await run('tail', ['-n', opts.lines, ...(opts.follow ? ['-f'] : []), file], { onLine: (l) => console.log(l) });
    });

  return program;
}

if (require.main === module) {
  buildStackCli().parseAsync().catch(fail);
}
