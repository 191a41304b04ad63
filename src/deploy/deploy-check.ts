/**
 * The pre-deploy check: the histories the server holds now replay against this checkout's workflow
 * code, every schema file is one the live registry accepts (BACKWARD), and the generated event
 * types match the schema files. One report; any problem fails it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { Client } from '@temporalio/client';
import type { Logger as SdkLogger } from '@temporalio/worker';
import { DefaultLogger } from '@temporalio/worker';

import { bundleSagaWorkflows } from '../../workers/saga-workers';
import { repoRoot } from '../config/stack-config';
import { GENERATED_FILE, generateEventModule, SCHEMAS_DIR } from '../events/codegen';
import type { RegistryClient } from '../kafka/registry-client';
import type { DownloadProgress, HistorySelection } from './live-histories';
import { liveHistories } from './live-histories';
import type { ReplayFailure } from './replay-check';
import { replayHistories } from './replay-check';
import type { SchemaCheckResult } from './schema-check';
import { checkSchemas, isSchemaProblem } from './schema-check';

/** One thing that blocks the deploy, as one line of the report. */
export interface DeployProblem {
  /** Failure type string: which check refused. */
  type: 'ReplayFailed' | 'SchemaIncompatible' | 'SchemaRuleTooWeak' | 'GeneratedTypesStale';
  /** The workflow id (and run), the schema file and subject, or the generated file. */
  target: string;
  message: string;
}

export interface DeployCheckOptions {
  client: Client;
  registry: RegistryClient;
  selection: HistorySelection;
  /** Another workflow module to check instead of the saga's (tests use variants). */
  workflowsPath?: string;
  schemasDir?: string;
  /** Prefix of the topics whose subjects are checked (tests use a unique one). */
  topicPrefix?: string;
  /** Skip parts; each skipped part is named in the summary. */
  skip?: { replay?: boolean; schemas?: boolean; codegen?: boolean };
  onProgress?: (p: DownloadProgress) => void;
  /** Each problem as soon as it is known, for a live report. */
  onProblem?: (p: DeployProblem) => void;
  bundleLogger?: SdkLogger;
}

export interface DeployCheckReport {
  problems: DeployProblem[];
  replay?: { replayed: number; failed: number; gone: number };
  schemas?: { checked: number; results: SchemaCheckResult[] };
  codegen?: { current: boolean };
}

export function replayProblem(f: ReplayFailure): DeployProblem {
  return { type: 'ReplayFailed', target: `${f.workflowId} (run ${f.runId})`, message: `${f.errorName}: ${f.message}` };
}

function schemaProblem(r: SchemaCheckResult): DeployProblem | undefined {
  const target = `schemas/${r.file} → ${r.subject}`;
  if (r.verdict.kind === 'incompatible') {
    return {
      type: 'SchemaIncompatible',
      target,
      message: `not BACKWARD compatible with registered version ${r.verdict.latestVersion}: ${r.verdict.reason}`,
    };
  }
  if (r.verdict.kind === 'weak-rule') {
    return {
      type: 'SchemaRuleTooWeak',
      target,
      message: `the subject enforces ${r.verdict.level}, not BACKWARD: the registry would accept a breaking change (npm run provision sets BACKWARD)`,
    };
  }
  return undefined;
}

/** Whether the generated event module is what schemas/ generates now. */
export async function generatedTypesCurrent(): Promise<boolean> {
  const [expected, actual] = await Promise.all([
    generateEventModule(SCHEMAS_DIR),
    readFile(GENERATED_FILE, 'utf8').catch(() => ''),
  ]);
  return expected === actual;
}

/** Runs the three checks; never throws for a problem found, only when a server cannot be asked. */
export async function runDeployCheck(options: DeployCheckOptions): Promise<DeployCheckReport> {
  const report: DeployCheckReport = { problems: [] };
  const add = (p: DeployProblem) => {
    report.problems.push(p);
    options.onProblem?.(p);
  };

  if (!options.skip?.codegen) {
    const current = await generatedTypesCurrent();
    report.codegen = { current };
    if (!current) {
      add({
        type: 'GeneratedTypesStale',
        target: path.relative(repoRoot(), GENERATED_FILE),
        message: 'does not match schemas/*.avsc: run npm run events:codegen and commit the result',
      });
    }
  }

  if (!options.skip?.schemas) {
    const results = await checkSchemas(options.registry, { dir: options.schemasDir, topicPrefix: options.topicPrefix });
    report.schemas = { checked: results.length, results };
    for (const r of results.filter(isSchemaProblem)) {
      const p = schemaProblem(r);
      if (p) add(p);
    }
  }

  if (!options.skip?.replay) {
    // Bundle first: a bundling error is the code's problem, and should not wait for downloads.
    const bundle = await bundleSagaWorkflows({
      workflowsPath: options.workflowsPath,
      logger: options.bundleLogger ?? new DefaultLogger('WARN'),
    });
    let gone = 0;
    const histories = liveHistories(options.client, options.selection, {
      onProgress: (p) => {
        gone = p.gone;
        options.onProgress?.(p);
      },
    });
    const summary = await replayHistories(bundle, histories, (f) => add(replayProblem(f)));
    report.replay = { replayed: summary.replayed, failed: summary.failures.length, gone };
  }
  return report;
}

/** The closing line(s) of a report: what was checked, and the verdict. */
export function summarize(report: DeployCheckReport): string {
  const parts: string[] = [];
  if (report.replay) {
    const gone = report.replay.gone ? `, ${report.replay.gone} gone before download` : '';
    parts.push(`${report.replay.replayed} histories replayed, ${report.replay.failed} failed${gone}`);
  } else parts.push('replay skipped');
  if (report.schemas) {
    const by = (k: string) => report.schemas!.results.filter((r) => r.verdict.kind === k).length;
    const refused = report.schemas.results.filter(isSchemaProblem).length;
    parts.push(
      `${report.schemas.checked} schemas: ${by('registered')} registered, ${by('compatible')} new and compatible, ` +
        `${by('new-subject')} on new subjects, ${refused} refused`,
    );
  } else parts.push('schemas skipped');
  if (report.codegen) parts.push(report.codegen.current ? 'generated types current' : 'generated types stale');
  else parts.push('generated types skipped');
  const n = report.problems.length;
  const verdict = n === 0 ? '✔ deploy check passed' : `✖ deploy check failed: ${n} problem${n === 1 ? '' : 's'}`;
  return `${parts.join('; ')}\n${verdict}`;
}
