import { main } from '../src/app/run-process';
import type { WorkerRole } from '../src/config/settings';

/**
 * Entry point shared by the worker entry files (workers/ and src/services/<name>/): the given workers through the one process start
 * (src/app/run-process.ts). A single-role process is that service's worker, holding only that
 * service's database URL, with its own default /metrics port so the five can run side by side.
 * Workers verify nothing and migrate nothing: provisioning prepares the schemas beforehand.
 */
export function startWorkerProcess(roles: readonly WorkerRole[]): void {
  const [only] = roles;
  const single = roles.length === 1 && only !== undefined;
  main({
    service: single ? `kts-${only}-worker` : 'kts-workers',
    usage: single
      ? only === 'saga'
        ? 'tsx workers/saga-worker.ts'
        : `tsx src/services/${only}/${only}-worker.ts`
      : 'npm run worker',
    description: single
      ? only === 'saga'
        ? 'The orchestrator: runs orderSaga (workflow code only) on its task queue.'
        : `The ${only} service's Temporal worker: runs its activities on its own task queue, with its own database role.`
      : 'Temporal workers for local use: the orchestrator and every service, each on its own task queue.',
    roles,
    metrics: single ? `worker-${only}` : 'workers',
  });
}
