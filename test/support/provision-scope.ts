import type { PlanStep } from '../../src/provision/plan';
import { buildPlan } from '../../src/provision/plan';
import { runProvision } from '../../src/provision/run';
import { provisionSettingsFrom } from '../../src/provision/settings';
import { testSettings } from './settings';

/**
 * Provisions a test scope's topics (with dead letters) and subjects through the real plan, as
 * `npm run provision` would for `KTS_SCOPE=<prefix>`: processes only verify, so a scope must be
 * provisioned before its ingress or event store starts.
 */
export async function provisionScope(
  prefix: string,
  {
    topics,
    partitions,
    include = ['topic', 'subject'],
  }: { topics?: readonly string[]; partitions?: number; include?: readonly PlanStep['kind'][] } = {},
): Promise<void> {
  const settings = provisionSettingsFrom(testSettings(['provision'], prefix));
  const plan = buildPlan({
    ...settings.plan,
    cdc: null,
    include,
    topics,
    ...(partitions ? { orderPartitions: partitions, domainPartitions: partitions } : {}),
  });
  await runProvision(plan, settings.targets);
}
