import { migrateAll } from './migrate';
import { printHelpIfAsked } from '../cli/help';

/** `npm run migrate`: applies pending migrations of every service and says what it did. */
async function main(): Promise<void> {
  printHelpIfAsked('npm run migrate', "Creates or updates each service's role, schema and tables (idempotent).", [
    'KTS_PG_PORT, KTS_PG_PASSWORD, KTS_DB_PASSWORD_<SERVICE>, KTS_DB_POOL_SIZE',
  ]);

  for (const r of await migrateAll()) {
    const what = r.applied.length ? `applied ${r.applied.join(', ')}` : 'up to date';
    process.stdout.write(`${r.schema}: ${what} (${r.alreadyApplied} already applied)\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
