/**
 * `npm run api`: the Orders HTTP API.
 * `npm run api -- --openapi` prints the OpenAPI document instead.
 */
import { main } from '../app/run-process';
import { loadSettings } from '../config/settings';
import { buildOpenApiDocument } from './openapi';

const LOOPBACK = /^(127\.|localhost$|::1$|\[::1\]$)/;

if (process.argv.includes('--openapi')) {
  const authRequired = loadSettings(['api'], process.env).roles.api.auth.mode !== 'off';
  process.stdout.write(`${JSON.stringify(buildOpenApiDocument({ authRequired }), null, 2)}\n`);
} else {
  main({
    service: 'kts-api',
    usage: 'npm run api [-- --openapi]',
    description:
      'The Orders HTTP API: POST /orders, GET /orders/:id, POST /orders/:id/cancel; --openapi prints its OpenAPI document.',
    roles: ['api'],
    metrics: 'api',
    flags: ['--openapi  print the OpenAPI document and exit'],
    afterStart: ({ running, settings, log }) => {
      const api = settings.roles.api;
      log.info(
        { url: running.api?.url, openapi: `${running.api?.url}/openapi.json`, authentication: api.auth.mode },
        api.auth.mode === 'off' ? 'authentication off (KTS_API_AUTH=jwt|static turns it on)' : 'authentication on',
      );
      if (api.auth.mode === 'off' && !LOOPBACK.test(api.host)) {
        log.warn({ host: api.host }, 'the Orders API listens beyond loopback without authentication; set KTS_API_AUTH');
      }
      return Promise.resolve(undefined);
    },
  });
}
