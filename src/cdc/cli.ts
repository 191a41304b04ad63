/**
 * `npm run cdc -- <command>`: the outbox connector as code.
 *   ensure   the publication and connector steps of `npm run provision` (idempotent), waiting until RUNNING
 *   status   print the connector's state; exit 2 when it or a task is FAILED, 3 when it is missing
 *   clean    delete the outbox rows the slot has confirmed (one round)
 */
import { Command } from 'commander';

import { loadStackConfig, stackEndpoints } from '../config/stack-config';
import { closeServicePools, createServicePools } from '../db/pools';
import { loadDbConfig } from '../db/db-config';
import { OUTBOX_SERVICES } from '../outbox/outbox-constants';
import { cleanOutboxOnce } from '../outbox/outbox-cleaner';
import { OUTBOX_CONNECTOR_NAME, OUTBOX_SLOT_NAME, connectorStatus, describeFailures } from './outbox-connector';
import { buildPlan } from '../provision/plan';
import { formatStepLine, runProvision } from '../provision/run';
import { loadProvisionSettings } from '../provision/settings';

const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<void> {
  const program = new Command('cdc').description('Debezium outbox connector');
  // The publication and connector steps of the provisioning plan (`npm run provision` runs them too).
  program.command('ensure').action(async () => {
    const settings = loadProvisionSettings();
    const plan = buildPlan({ ...settings.plan, include: ['publication', 'connector'] });
    const report = await runProvision(plan, settings.targets);
    report.steps.forEach((r, i) => out(formatStepLine(i + 1, report.steps.length, r)));
  });
  program.command('status').action(async () => {
    const s = await connectorStatus(stackEndpoints(loadStackConfig()).connectUrl, OUTBOX_CONNECTOR_NAME);
    if (!s) {
      out(`${OUTBOX_CONNECTOR_NAME}: not registered (run: npm run provision)`);
      process.exitCode = 3;
      return;
    }
    out(`${s.name}: connector ${s.connector.state}; tasks ${s.tasks.map((t) => `${t.id}=${t.state}`).join(', ')}`);
    const failures = describeFailures(s);
    for (const f of failures) out(`  ${f}`);
    if (failures.length) process.exitCode = 2;
  });
  program.command('clean').action(async () => {
    const pools = createServicePools(loadDbConfig(), 2);
    try {
      const outboxes = Object.fromEntries(OUTBOX_SERVICES.map((s) => [s, pools[s]]));
      const r = await cleanOutboxOnce({ slotName: OUTBOX_SLOT_NAME, outboxes });
      out(
        r.confirmed ? `deleted ${JSON.stringify(r.deleted)}` : 'slot has not confirmed the watermark: nothing deleted',
      );
    } finally {
      await closeServicePools(pools);
    }
  });
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  const e = err as { type?: string; message?: string };
  process.stderr.write(`${e.type ? `${e.type}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(1);
});
