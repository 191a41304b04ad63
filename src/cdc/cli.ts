/**
 * `npm run cdc -- <command>`: the outbox connector as code.
 *   ensure   create the publication and register/update the connector (idempotent), wait until RUNNING
 *   status   print the connector's state; exit 2 when it or a task is FAILED, 3 when it is missing
 *   clean    delete the outbox rows the slot has confirmed (one round)
 */
import { Command } from 'commander';

import { loadStackConfig, stackEndpoints } from '../config/stack-config';
import { closeServicePools, createServicePools } from '../db/pools';
import { loadDbConfig } from '../db/db-config';
import { OUTBOX_SERVICES } from '../outbox/outbox-constants';
import { cleanOutboxOnce } from '../outbox/outbox-cleaner';
import {
  OUTBOX_CONNECTOR_NAME,
  OUTBOX_SLOT_NAME,
  connectorStatus,
  defaultOutboxConnectorOptions,
  describeFailures,
  ensureOutboxConnector,
} from './outbox-connector';

const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<void> {
  const program = new Command('cdc').description('Debezium outbox connector');
  program.command('ensure').action(async () => {
    const r = await ensureOutboxConnector(loadStackConfig(), defaultOutboxConnectorOptions());
    out(`${r.name}: ${r.action}, ${r.status.connector.state} with ${r.status.tasks.length} task(s)`);
  });
  program.command('status').action(async () => {
    const s = await connectorStatus(stackEndpoints(loadStackConfig()).connectUrl, OUTBOX_CONNECTOR_NAME);
    if (!s) {
      out(`${OUTBOX_CONNECTOR_NAME}: not registered (run: npm run cdc -- ensure)`);
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
