/**
 * `npm run api`: the Orders HTTP API (KTS_API_* settings, see api-config.ts).
 * `npm run api -- --openapi` prints the OpenAPI document instead.
 */
import { initTracing } from '../observability/tracing';
import { startMetrics } from '../observability/metrics';
import { loadApiConfig } from './api-config';
import { startOrdersApi } from './app';
import { loadApiAuthSettings } from './auth-settings';
import { buildOpenApiDocument } from './openapi';
import { printHelpIfAsked } from '../cli/help';

async function main(): Promise<void> {
  printHelpIfAsked(
    'npm run api [-- --openapi]',
    'The Orders HTTP API: POST /orders, GET /orders/:id, POST /orders/:id/cancel; --openapi prints its OpenAPI document.',
    [
      'KTS_API_PORT (default 8090) and the other KTS_API_* settings in src/api/api-config.ts',
      'KTS_API_AUTH (off | jwt | static, default off) and the KTS_API_AUTH_* settings in src/api/auth-settings.ts',
      'KTS_METRICS_PORT (default 9467), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      'KTS_PG_PORT, KTS_TEMPORAL_PORT, KTS_REGISTRY_PORT (see src/config/stack-config.ts)',
    ],
  );

  if (process.argv.includes('--openapi')) {
    const authRequired = loadApiAuthSettings().mode !== 'off';
    process.stdout.write(`${JSON.stringify(buildOpenApiDocument({ authRequired }), null, 2)}\n`);
    return;
  }
  // Before the API starts: the outbox writer records the active span's traceparent on each row.
  initTracing('kts-api');
  const cfg = loadApiConfig();
  const api = await startOrdersApi(cfg);
  // Process metrics only for now (CPU, memory, event loop lag): the API is one more process to watch.
  const served = await startMetrics('api');
  process.stdout.write(`orders API listening on ${api.url} (OpenAPI: ${api.url}/openapi.json)\n`);
  process.stdout.write(
    `authentication: ${api.authMode === 'off' ? 'off (KTS_API_AUTH=jwt|static turns it on)' : api.authMode}\n`,
  );
  if (api.authMode === 'off' && !/^(127\.|localhost$|::1$|\[::1\]$)/.test(cfg.host)) {
    process.stderr.write(`warning: the Orders API listens on ${cfg.host} without authentication; set KTS_API_AUTH\n`);
  }
  process.stdout.write(`Prometheus metrics at ${served.url}\n`);
  const stop = () => {
    api.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
