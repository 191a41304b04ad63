/**
 * `orders parked …`: find and decide the sagas a failed compensation parked.
 *
 *   orders parked list [--json] [--task-queue <q>]
 *   orders parked show <orderId> [--json]
 *   orders parked retry <orderId> [--operator <name>] [--reason <why>]
 *   orders parked resolve <orderId> --reason <why> [--operator <name>]   (someone undid it by hand)
 *   orders parked abandon <orderId> --reason <why> [--operator <name>]
 *
 * The operator defaults to $KTS_OPERATOR, then $USER. Every decision is recorded by the saga as an
 * order.parked-decision event (see `orders history <orderId>`).
 */
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';

import { loadSettings } from '../config/settings';
import type { ParkedDecisionKind, SagaStatus } from '../shared/saga-contract';
import { formatMoney } from '../shared/saga-contract';
import type { ParkedSagaRow } from './parked-sagas';
import { decideParked, listParkedSagas, showSaga } from './parked-sagas';

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  // A tool: the shared sections only (Temporal address, TLS, namespace), parsed once per command.
  const { temporal } = loadSettings([], process.env, { refuseForeignCredentials: false });
  const temporalAddress = temporal.connection.address;
  const namespace = temporal.namespace;
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporal.connection, connectTimeout: 5_000 });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${temporalAddress} (${(err as Error).message}): start it with npm run stack -- up`,
    );
  }
  try {
    return await fn(new Client({ connection, namespace }));
  } finally {
    await connection.close();
  }
}

const money = (r: Pick<ParkedSagaRow, 'totalMinor' | 'currency'>) =>
  r.totalMinor !== undefined && r.currency ? formatMoney(r.totalMinor, r.currency) : '-';

function describeStatus(s: SagaStatus): string[] {
  const lines = [`state      ${s.state}`];
  if (s.failure) lines.push(`failure    ${s.failure.step}: ${s.failure.type}: ${s.failure.message}`);
  for (const f of s.failedCompensations) lines.push(`stuck      ${f.step}: ${f.type}: ${f.message}`);
  if (s.compensationsRun.length) lines.push(`undone     ${s.compensationsRun.join(', ')}`);
  if (s.parked) lines.push(`parked     since ${new Date(s.parked.since).toISOString()} (round ${s.parked.round})`);
  for (const d of s.decisions ?? []) {
    lines.push(
      `decision   ${new Date(d.at).toISOString()} ${d.decision} by ${d.operator}${d.reason ? `: ${d.reason}` : ''}`,
    );
  }
  return lines;
}

function operatorOf(o: { operator?: string }): string {
  const operator = o.operator ?? process.env.KTS_OPERATOR ?? process.env.USER;
  if (!operator?.trim()) throw new Error('who decides? pass --operator <name> (or set KTS_OPERATOR)');
  return operator;
}

/** Adds `parked list | show | retry | resolve | abandon` to the `orders` program. */
export function registerParkedCommands(program: Command): void {
  const parked = program
    .command('parked')
    .description('sagas parked on a compensation that exhausted its retries, waiting for an operator');

  parked
    .command('list')
    .description('every open parked saga, oldest first')
    .option('--task-queue <q>', "only sagas on this saga task queue (a prefixed run's)")
    .option('--json', 'one JSON object per line')
    .action(async (o: { taskQueue?: string; json?: boolean }) => {
      const rows = await withClient((client) => listParkedSagas(client, { taskQueue: o.taskQueue }));
      if (o.json) {
        for (const r of rows) console.log(JSON.stringify({ ...r, parkedSince: r.parkedSince?.toISOString() ?? null }));
        return;
      }
      console.log(`${rows.length} parked saga(s)`);
      for (const r of rows) {
        console.log(
          `${r.orderId}  failed ${r.failedStep ?? '-'}  customer ${r.customerId ?? '-'}  ${money(r)}` +
            `  parked since ${r.parkedSince?.toISOString() ?? '-'}`,
        );
      }
    });

  parked
    .command('show')
    .description("one order's saga: state, what failed, what was undone, decisions so far")
    .argument('<orderId>')
    .option('--json', 'print JSON')
    .action(async (orderId: string, o: { json?: boolean }) => {
      const view = await withClient((client) => showSaga(client, orderId));
      if (o.json) {
        console.log(JSON.stringify({ ...view, parkedSince: view.parkedSince?.toISOString() ?? null }, null, 2));
        return;
      }
      console.log(`order      ${view.orderId} (workflow ${view.workflowId}, ${view.executionStatus})`);
      console.log(`summary    ${view.summary ?? '-'}`);
      console.log(
        `customer   ${view.customerId ?? '-'}   total ${money(view)}   failed step ${view.failedStep ?? '-'}`,
      );
      if (view.status) for (const line of describeStatus(view.status)) console.log(line);
      else console.log(`state      ${view.state ?? 'unknown'} (the saga did not answer its status query)`);
    });

  const decide = (kind: ParkedDecisionKind, name: string, description: string, reasonRequired: boolean) =>
    parked
      .command(name)
      .description(description)
      .argument('<orderId>')
      .option('--operator <name>', 'who decides (default: $KTS_OPERATOR, then $USER)')
      .option('--reason <why>', reasonRequired ? 'why (required)' : 'why (optional)')
      .action(async (orderId: string, o: { operator?: string; reason?: string }) => {
        const status = await withClient((client) =>
          decideParked(client, orderId, { decision: kind, operator: operatorOf(o), reason: o.reason }),
        );
        console.log(`${kind} recorded for order ${orderId}`);
        for (const line of describeStatus(status)) console.log(line);
      });
  decide('RETRY', 'retry', 'run the failed compensations again (the saga parks again if one still fails)', false);
  decide('RESOLVE_MANUALLY', 'resolve', 'someone undid the failed steps by hand: end the saga as failed', true);
  decide('ABANDON', 'abandon', 'leave the failed steps as they are and end the saga', true);
}
