/**
 * `npm run provision`: applies the provisioning plan (migrations of every owner, topics, registry
 * subjects in file order, Temporal search attributes, publication and connector), idempotently.
 *   --dry-run           print the plan and what applying it would do; change nothing
 *   --check             the same, exiting 1 when anything is not in place (for deploy checks)
 *   --reorder-subjects  re-register subjects whose versions are out of file order (ids are kept)
 *   --no-cdc            leave the publication and the connector out
 */
import { Command } from 'commander';

import { formatHelp } from '../config/help';
import { buildPlan, describeStep } from './plan';
import { formatStepLine, runProvision } from './run';
import { loadProvisionSettings } from './settings';

const out = (line: string) => process.stdout.write(`${line}\n`);

interface CliOptions {
  dryRun?: boolean;
  check?: boolean;
  reorderSubjects?: boolean;
  cdc: boolean;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('provision')
    .description('Apply the infrastructure the system needs, from one declared plan (idempotent).')
    .option('--dry-run', 'print what applying would do; change nothing')
    .option('--check', 'like --dry-run, but exit 1 when anything is not in place')
    .option('--reorder-subjects', 're-register subjects whose versions are out of file order (schema ids are kept)')
    .option('--no-cdc', 'leave out the CDC heartbeat migrations, the publication and the connector')
    .addHelpText('after', `\n${formatHelp('npm run provision', 'The settings it reads:', ['provision'])}`);
  program.parse(argv);
  const opts = program.opts<CliOptions>();
  const settings = loadProvisionSettings();
  const plan = buildPlan({ ...settings.plan, cdc: opts.cdc ? settings.plan.cdc : null });
  const inspecting = Boolean(opts.dryRun || opts.check);
  out(
    `${inspecting ? 'checking' : 'provisioning'} ${plan.length} steps${settings.plan.topicPrefix ? ` of scope ${settings.plan.topicPrefix}` : ''}`,
  );
  const report = await runProvision(plan, settings.targets, {
    mode: inspecting ? 'check' : 'apply',
    reorderSubjects: opts.reorderSubjects,
    onProgress: ({ index, total, step, report: r }) => {
      if (r) out(formatStepLine(index, total, r));
      else if (process.stdout.isTTY) process.stdout.write(`[${index}/${total}] … ${describeStep(step)}\r`);
    },
  });
  if (inspecting) {
    out(
      report.pending
        ? `${report.pending} of ${plan.length} steps not in place: run \`npm run provision\``
        : 'everything is in place',
    );
    if (opts.check && report.pending) process.exitCode = 1;
  } else {
    out(`done: ${report.pending} step(s) changed, ${plan.length - report.pending} already in place`);
  }
}

main(process.argv).catch((err: unknown) => {
  const e = err as { type?: string; message?: string };
  process.stderr.write(`✖ provisioning failed: ${e.type ? `${e.type}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(1);
});
