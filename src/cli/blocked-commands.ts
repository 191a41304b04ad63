/**
 * `orders blocked dead-letter`: releases one record the ingress handler keeps failing on (a bug or an
 * unforeseen case; `npm run status` shows it with its position and attempts). The ingress writes it to
 * `<topic>.dlq` with reason HandlerError at its next retry and the partition continues; replay it
 * with `orders dlq replay` once the bug is fixed.
 *
 *   orders blocked dead-letter --topic order.placed --partition 2 --offset 41 --reason "…" [--operator <name>]
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';

import { createPgPool } from '../config/clients';
import { loadSettings } from '../config/settings';
import { IngressLedger } from '../ingress/ledger';

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer >= 0');
  return n;
}

/** Adds `blocked dead-letter` to the `orders` program. */
export function registerBlockedCommands(program: Command): void {
  const blocked = program.command('blocked').description('records that block an ingress partition');
  blocked
    .command('dead-letter')
    .description('move one record the handler keeps failing on to the dead-letter topic (reason HandlerError)')
    .requiredOption('--topic <t>', 'the source topic, e.g. order.placed')
    .requiredOption('--partition <n>', 'its partition', nonNegativeInt)
    .requiredOption('--offset <n>', 'its offset', nonNegativeInt)
    .option('--reason <why>', 'why it is released (required)')
    .option('--operator <name>', 'who decides (default: $KTS_OPERATOR, then $USER)')
    .option('--wait <seconds>', 'how long to wait for the ingress to act (0: do not wait)', nonNegativeInt, 60)
    .action(
      async (o: {
        topic: string;
        partition: number;
        offset: number;
        reason?: string;
        operator?: string;
        wait: number;
      }) => {
        if (!o.reason?.trim()) throw new Error('a reason is required to dead-letter a blocked record');
        const operator = o.operator ?? process.env.KTS_OPERATOR ?? process.env.USER;
        if (!operator?.trim()) throw new Error('who decides? pass --operator <name> (or set KTS_OPERATOR)');
        const settings = loadSettings(['ingress'], process.env, { refuseForeignCredentials: false });
        const pool = createPgPool(settings.roles.ingress.pgUrl, settings.postgres, {
          max: 1,
          applicationName: 'kts-orders-cli',
        });
        try {
          const ledger = new IngressLedger(pool);
          const at = { topic: o.topic, partition: o.partition, offset: String(o.offset) };
          const where = `${o.topic}/${o.partition}@${o.offset}`;
          const release = await ledger.requestRelease(at, operator.trim(), o.reason.trim());
          if (release.deadLetteredAt) {
            console.log(`${where} was already dead-lettered at ${release.deadLetteredAt.toISOString()}`);
            return;
          }
          console.log(`release of ${where} recorded (by ${release.operator}); the ingress acts at its next retry`);
          const deadline = Date.now() + o.wait * 1000;
          while (Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 500));
            const now = await ledger.release(at);
            if (now?.deadLetteredAt) {
              console.log(`${where} dead-lettered at ${now.deadLetteredAt.toISOString()}; the partition continues`);
              return;
            }
          }
          if (o.wait > 0) {
            throw new Error(`${where} is not dead-lettered yet: is the ingress running and still failing on it?`);
          }
        } finally {
          await pool.end();
        }
      },
    );
}
