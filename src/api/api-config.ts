import { z } from 'zod';

import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../config/stack-config';
import type { ApiAuthSettings } from './auth-settings';
import { loadApiAuthSettings } from './auth-settings';

const apiEnvSchema = z.object({
  KTS_API_PORT: z.coerce.number().int().min(1).max(65535).default(8090),
  KTS_API_HOST: z.string().min(1).default('127.0.0.1'),
  /** Requests above this size get 413 before parsing; an order of 500 lines fits easily. */
  KTS_API_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(10_000_000)
    .default(256 * 1024),
  /** Prefix of the topics the outbox rows go to (tests and benchmarks); empty in production. */
  KTS_API_TOPIC_PREFIX: z.string().default(''),
  KTS_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
});

export interface ApiConfig {
  port: number;
  host: string;
  bodyLimitBytes: number;
  topicPrefix: string;
  registryUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  /** Bearer-token authentication (off by default; see auth-settings.ts). */
  auth: ApiAuthSettings;
}

/** Parses the API's settings from the environment once, failing fast with a readable message. */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const parsed = apiEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid API settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  const endpoints = stackEndpoints(loadStackConfig(env));
  return {
    port: e.KTS_API_PORT,
    host: e.KTS_API_HOST,
    bodyLimitBytes: e.KTS_API_BODY_LIMIT_BYTES,
    topicPrefix: e.KTS_API_TOPIC_PREFIX,
    registryUrl: endpoints.registryUrl,
    temporalAddress: endpoints.temporalAddress,
    temporalNamespace: e.KTS_TEMPORAL_NAMESPACE,
    auth: loadApiAuthSettings(env),
  };
}
