import { formatHelp } from '../config/help';
import { buildPlan } from '../provision/plan';
import { formatStepLine, runProvision } from '../provision/run';
import { loadProvisionSettings } from '../provision/settings';

/**
 * `npm run migrate`: only the migration steps of the provisioning plan (every owner's schema: the
 * services, the ingress ledger, the event store, the CDC heartbeat). `npm run provision` does these
 * and everything else; this stays for an operator who wants just the database.
 */
async function main(): Promise<void> {
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(
      formatHelp(
        'npm run migrate',
        "The migration steps of `npm run provision`: each owner's role, schema and tables.",
        ['provision'],
      ),
    );
    return;
  }
  const settings = loadProvisionSettings();
  const plan = buildPlan({ ...settings.plan, include: ['migrations'] });
  await runProvision(plan, settings.targets, {
    onProgress: ({ index, total, report }) => {
      if (report) process.stdout.write(`${formatStepLine(index, total, report)}\n`);
    },
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`✖ migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
