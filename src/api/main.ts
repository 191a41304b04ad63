/**
 * `npm run api`: the Orders HTTP API (KTS_API_* settings, see api-config.ts).
 * `npm run api -- --openapi` prints the OpenAPI document instead.
 */
import { loadApiConfig } from './api-config';
import { startOrdersApi } from './app';
import { buildOpenApiDocument } from './openapi';

async function main(): Promise<void> {
  if (process.argv.includes('--openapi')) {
    process.stdout.write(`${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
    return;
  }
  const api = await startOrdersApi(loadApiConfig());
  process.stdout.write(`orders API listening on ${api.url} (OpenAPI: ${api.url}/openapi.json)\n`);
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
