/**
 * Runs a plan: applies every step in order (stopping at the first failure, so a step never runs
 * before what it depends on), or inspects every step (`check` / `dry-run`) without changing anything.
 */
import type { PlanStep } from './plan';
import { describeStep } from './plan';
import type { ProvisionTargets } from './settings';
import type { ApplyOptions } from './steps';
import { applyStep, inspectStep, ProvisionClients } from './steps';

export type ProvisionMode = 'apply' | 'check';

export interface StepReport {
  step: PlanStep;
  /** apply: `changed`/`unchanged`; check: `ok`/`missing`. */
  outcome: 'changed' | 'unchanged' | 'ok' | 'missing';
  detail: string;
}

export interface ProvisionReport {
  mode: ProvisionMode;
  steps: StepReport[];
  /** apply: steps that changed something; check: steps that are not in place. */
  pending: number;
}

export interface RunOptions extends ApplyOptions {
  mode?: ProvisionMode;
  /** Called before each step (`index` from 1) and after it, so the terminal never goes quiet. */
  onProgress?: (event: { index: number; total: number; step: PlanStep; report?: StepReport }) => void;
}

/**
 * Applies (or checks) the plan against the targets. Apply is idempotent: a second run reports every
 * step `unchanged`. A failing step throws with the step named, after the clients are closed.
 */
export async function runProvision(
  plan: readonly PlanStep[],
  targets: ProvisionTargets,
  opts: RunOptions = {},
): Promise<ProvisionReport> {
  const mode = opts.mode ?? 'apply';
  const clients = new ProvisionClients(targets);
  const steps: StepReport[] = [];
  try {
    for (const [i, step] of plan.entries()) {
      const index = i + 1;
      opts.onProgress?.({ index, total: plan.length, step });
      let report: StepReport;
      try {
        if (mode === 'apply') {
          const r = await applyStep(step, clients, opts);
          report = { step, outcome: r.changed ? 'changed' : 'unchanged', detail: r.detail };
        } else {
          const r = await inspectStep(step, clients);
          report = { step, outcome: r.ok ? 'ok' : 'missing', detail: r.detail };
        }
      } catch (err) {
        const e = err as Error & { type?: string };
        const wrapped = new Error(`${describeStep(step)}: ${e.message}`) as Error & { type?: string };
        wrapped.type = e.type ?? 'ProvisionStepFailed';
        throw wrapped;
      }
      steps.push(report);
      opts.onProgress?.({ index, total: plan.length, step, report });
    }
  } finally {
    await clients.close();
  }
  const pending = steps.filter((s) => s.outcome === 'changed' || s.outcome === 'missing').length;
  return { mode, steps, pending };
}

/** One line per step for a terminal: `[ 3/24] ✔ topic order.placed (…): created`. */
export function formatStepLine(index: number, total: number, report: StepReport): string {
  const mark = { changed: '✔', unchanged: '·', ok: '✔', missing: '✖' }[report.outcome];
  const width = String(total).length;
  return `[${String(index).padStart(width)}/${total}] ${mark} ${describeStep(report.step)}: ${report.detail}`;
}
