/**
 * Worker Deployment Versioning for the saga worker (the orchestrator: the only worker that runs
 * workflow code, so the only one whose builds must not mix). Each build polls as the version
 * `<deployment>.<buildId>`; new sagas go to the deployment's Current Version, which only our
 * promote command moves.
 *
 * orderSaga is PINNED: a run finishes on the build it started on. A saga lives for seconds to
 * minutes, so the previous build drains quickly and keeping it up until then is cheap, while a run
 * that hops builds mid-flight would need every change behind patched() with both branches kept
 * forever. AUTO_UPGRADE suits workflows that run for weeks and could never drain. Sagas parked in
 * COMPENSATION_FAILED are the exception that lasts: they stay pinned to their build until an
 * operator ends them, so a build is retired only when `temporal worker deployment describe-version`
 * shows it drained, or after those runs are moved explicitly (`temporal workflow update-options
 * --versioning-override-behavior`). Changes still go behind patched(): the deploy check replays every
 * live history against the new build, which keeps moving a run possible.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { Client } from '@temporalio/client';
import type { VersioningBehavior, WorkerDeploymentVersion } from '@temporalio/common';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { z } from 'zod';

import { formatEnvIssues, repoRoot } from '../config/stack-config';

/** Why PINNED: see the module comment. */
export const ORDER_SAGA_VERSIONING_BEHAVIOR: VersioningBehavior = 'PINNED';

export const DEFAULT_DEPLOYMENT_NAME = 'kts-order-saga';

/** Deployment names and build ids end up in `<name>.<buildId>`: no dots in the name, nothing exotic in either. */
const deploymentName = z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only');
const buildId = z.string().regex(/^[A-Za-z0-9_.+-]+$/, 'letters, digits and "_.+-" only');

export const deploymentEnvSchema = z.object({
  /**
   * Off by default: an unversioned worker takes every task of its queue, which is what local runs and
   * tests want. Production turns it on, and then new sagas need a Current Version (deploy:promote).
   */
  KTS_WORKER_VERSIONING: z
    .enum(['on', 'off'])
    .default('off')
    .describe(
      'on: the saga worker polls as <deployment>.<build id> (Worker Deployment Versioning); new sagas need deploy:promote.',
    ),
  KTS_WORKER_DEPLOYMENT_NAME: deploymentName
    .default(DEFAULT_DEPLOYMENT_NAME)
    .describe("The saga worker's Worker Deployment name."),
  KTS_WORKER_BUILD_ID: buildId
    .optional()
    .describe("The saga worker's build id. Default: package version + git revision (+ -dirty)."),
});

export interface WorkerDeploymentSettings {
  versioning: boolean;
  version: WorkerDeploymentVersion;
}

/** `<package version>-<short git revision>` (with `-dirty` for uncommitted changes), or the version alone outside git. */
export function defaultBuildId(root = repoRoot()): string {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  try {
    const git = (args: string[]) =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const rev = git(['rev-parse', '--short=10', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
    return `${pkg.version}-${rev}${dirty ? '-dirty' : ''}`;
  } catch {
    return pkg.version;
  }
}

/** Parses the saga worker's deployment settings once, failing with the variable's name. */
export function loadWorkerDeploymentSettings(env: NodeJS.ProcessEnv = process.env): WorkerDeploymentSettings {
  const parsed = deploymentEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid worker deployment settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  return {
    versioning: e.KTS_WORKER_VERSIONING === 'on',
    version: { deploymentName: e.KTS_WORKER_DEPLOYMENT_NAME, buildId: e.KTS_WORKER_BUILD_ID ?? defaultBuildId() },
  };
}

/** The saga worker's `workerDeploymentOptions`; undefined (unversioned) when versioning is off. */
export function sagaWorkerDeploymentOptions(settings: WorkerDeploymentSettings): WorkerDeploymentOptions | undefined {
  if (!settings.versioning) return undefined;
  return {
    version: settings.version,
    useWorkerVersioning: true,
    defaultVersioningBehavior: ORDER_SAGA_VERSIONING_BEHAVIOR,
  };
}

/**
 * Makes `version` the deployment's Current Version: new sagas start on it, pinned runs stay where
 * they are. The server refuses a version none of whose workers has polled yet (start the new
 * build's workers first).
 */
export async function promoteVersion(client: Client, version: WorkerDeploymentVersion): Promise<void> {
  await client.workflowService.setWorkerDeploymentCurrentVersion({
    namespace: client.options.namespace,
    deploymentName: version.deploymentName,
    buildId: version.buildId,
    identity: client.options.identity,
  });
}

/** The deployment's Current Version's build id, or undefined when new runs go to unversioned workers. */
export async function currentBuildId(client: Client, deployment: string): Promise<string | undefined> {
  const r = await client.workflowService.describeWorkerDeployment({
    namespace: client.options.namespace,
    deploymentName: deployment,
  });
  return r.workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId ?? undefined;
}
