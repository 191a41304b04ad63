import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { createRegistryClient } from '../../src/config/clients';
import { loadSettings } from '../../src/config/settings';

/** A registry stand-in that wants basic auth `svc:right` and answers /subjects. */
async function serveRegistry(): Promise<{ url: string; seen: (string | undefined)[]; close: () => Promise<void> }> {
  const seen: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    if (req.headers.authorization !== `Basic ${Buffer.from('svc:right').toString('base64')}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="registry"' }).end('{"error_code":401}');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('["order.placed-value"]');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/apis/ccompat/v7`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('schema registry credentials', () => {
  it('sends the settings’ basic-auth credentials, and a refusal is one line naming the user and the URL', async () => {
    const registry = await serveRegistry();
    try {
      const client = (username?: string, password?: string) =>
        createRegistryClient(
          loadSettings([], {
            KTS_REGISTRY_URL: registry.url,
            ...(username === undefined ? {} : { KTS_REGISTRY_USERNAME: username, KTS_REGISTRY_PASSWORD: password }),
          }).registry,
        );
      await expect(client('svc', 'right').subjects()).resolves.toEqual(['order.placed-value']);
      await expect(client('svc', 'wrong').subjects()).rejects.toThrow(
        new Error(
          `schema registry refused the credentials for user svc at ${registry.url}: check KTS_REGISTRY_USERNAME/PASSWORD`,
        ),
      );
      await expect(client().subjects()).rejects.toThrow(
        `schema registry at ${registry.url} requires credentials (401): set KTS_REGISTRY_USERNAME/PASSWORD`,
      );
      expect(registry.seen).toEqual([
        `Basic ${Buffer.from('svc:right').toString('base64')}`,
        `Basic ${Buffer.from('svc:wrong').toString('base64')}`,
        undefined,
      ]);
    } finally {
      await registry.close();
    }
  });
});
