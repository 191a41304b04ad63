/**
 * `npm run cdc -- <command>`: the outbox connector as code.
 *   ensure   the publication and connector steps of `npm run provision` (idempotent), waiting until RUNNING
 *   status   print the connector's state; exit 2 when it or a task is FAILED, 3 when it is missing
 *   clean    delete the outbox rows the slot has confirmed (one round)
 */
import { Command } from 'commander';

import { createPgPool } from '../config/clients';
import { loadSettings } from '../config/settings';
import { cleanOutboxOnce } from '../outbox/outbox-cleaner';
import { buildPlan } from '../provision/plan';
import { formatStepLine, runProvision } from '../provision/run';
import { provisionSettingsFrom } from '../provision/settings';
import { connectorStatus, describeFailures } from './outbox-connector';

const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<void> {
  const program = new Command('cdc').description('Debezium outbox connector');
  // Provisioning's settings (superuser, Connect URL); the scope picks the connector's names.
  const provisionSettings = () => loadSettings(['provision'], process.env);
  // The publication and connector steps of the provisioning plan (`npm run provision` runs them too).
  program.command('ensure').action(async () => {
    const settings = provisionSettingsFrom(provisionSettings());
    const plan = buildPlan({ ...settings.plan, include: ['publication', 'connector'] });
    const report = await runProvision(plan, settings.targets);
    report.steps.forEach((r, i) => out(formatStepLine(i + 1, report.steps.length, r)));
  });
  program.command('status').action(async () => {
    const settings = provisionSettings();
    const name = settings.common.names.connector.name;
    const s = await connectorStatus(settings.roles.provision.connectUrl, name);
    if (!s) {
      out(`${name}: not registered (run: npm run provision)`);
      process.exitCode = 3;
      return;
    }
    out(`${s.name}: connector ${s.connector.state}; tasks ${s.tasks.map((t) => `${t.id}=${t.state}`).join(', ')}`);
    const failures = describeFailures(s);
    for (const f of failures) out(`  ${f}`);
    if (failures.length) process.exitCode = 2;
  });
  program.command('clean').action(async () => {
    // The outbox cleaner's own role section: its own login role, which may only read and delete outbox rows.
    const settings = loadSettings(['outboxCleaner'], process.env);
    const db = createPgPool(settings.roles.outboxCleaner.pgUrl, settings.postgres, {
      max: 2,
      applicationName: 'kts-cdc-clean',
    });
    try {
      const r = await cleanOutboxOnce({ slotName: settings.common.names.connector.slotName, db });
      out(
        r.confirmed ? `deleted ${JSON.stringify(r.deleted)}` : 'slot has not confirmed the watermark: nothing deleted',
      );
    } finally {
      await db.end();
    }
  });
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  const e = err as { type?: string; message?: string };
  process.stderr.write(`${e.type ? `${e.type}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(1);
});
