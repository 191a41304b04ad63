/**
 * Settings for tests, through the one settings model: every test isolates itself with its own
 * KTS_SCOPE, and overrides variables exactly as a deployment would set them.
 */
import type { CdcTarget } from '../../src/cdc/outbox-connector';
import type { Role, Settings } from '../../src/config/settings';
import { loadSettings, ROLES } from '../../src/config/settings';

/**
 * Settings of `roles` under `scope` ('' = production names), with `overrides` on top of the environment.
 * Tracing follows the production default (KTS_TEMPORAL_TRACING=auto: off without an OTLP endpoint);
 * a test that reads spans sets it on, and prebuilt bundles follow `common.temporalTracing`.
 */
export function testSettings<R extends Role>(
  roles: readonly R[],
  scope = '',
  overrides: Record<string, string> = {},
): Settings<R> {
  return loadSettings(roles, { ...process.env, KTS_SCOPE: scope, ...overrides });
}

/** Every role's settings, production names: what provisioning and cross-schema assertions use. */
export const allSettings: Settings = testSettings(ROLES);

/** Where connectors are registered: the provision section's superuser and Connect URL. */
export function cdcTargetOf(settings: Settings<'provision'> = allSettings): CdcTarget {
  const p = settings.roles.provision;
  return { adminUrl: p.adminUrl, connectUrl: p.connectUrl, ssl: settings.postgres.ssl };
}
