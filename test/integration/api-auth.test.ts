/**
 * The Orders API with authentication on, over real HTTP: a JWKS served by this test on 127.0.0.1
 * with keys it generates, the real orders store in PostgreSQL and the registry's codec. Every
 * refused request is checked in PostgreSQL to have written nothing: no order, no outbox row, no
 * Idempotency-Key record.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { JWK, JWTPayload, KeyLike } from 'jose';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import pg from 'pg';

import { AUTH_REALM, AuthFailure, createAuthenticator } from '../../src/api/auth';
import { apiAuthSettingsSchema } from '../../src/api/auth-settings';
import { ApiError } from '../../src/api/order-requests';
import { OrdersStore } from '../../src/api/orders-store';
import { TemporalSagaStatusReader } from '../../src/api/saga-status';
import { buildApiServer } from '../../src/api/server';
import { dbConfigFromSettings } from '../../src/db/db-config';
import { migrateAll } from '../../src/db/migrate';
import { EventCodec } from '../../src/events/codec';
import { RegistryClient } from '../../src/kafka/registry-client';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import { allSettings } from '../support/settings';
import { endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(120_000);

const ISSUER = 'https://idp.test.invalid/';
const AUDIENCE = 'kts-orders-api';
const STATIC_TOKENS = [`st1-${randomUUID()}-${randomUUID()}`, `st2-${randomUUID()}-${randomUUID()}`];

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyLike;
  publicJwk: JWK;
}

async function signingKey(kid: string, alg: SigningKey['alg']): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A JWKS endpoint like an identity provider's, counting how often it is fetched. */
async function serveJwks(keys: () => JWK[]): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: keys() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('Orders API authentication', () => {
  const db = dbConfigFromSettings(allSettings.roles.provision, allSettings.postgres);
  const ordersPool = new pg.Pool({ connectionString: db.owners.orders.url, max: 4 });
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 2 });
  // The outbox rows of this suite go to its own topics; counting rows by prefix shows what it wrote.
  const prefix = `${uniqueName('apiauth')}.`;
  const outbox = new OutboxWriter({
    codec: new EventCodec(new RegistryClient(endpoints.registryUrl)),
    topicPrefix: prefix,
  });
  let connection: Connection;
  let jwks: Awaited<ReturnType<typeof serveJwks>>;
  let rsa: SigningKey;
  let ec: SigningKey;
  /** The keys the identity provider currently publishes. */
  const published: JWK[] = [];
  const servers: FastifyInstance[] = [];
  let jwtUrl: string;
  let staticUrl: string;
  let deadJwksUrl: string;

  /** An API like `npm run api` builds it, authenticating with the settings parsed from `env`. */
  async function startApi(env: Record<string, string>): Promise<string> {
    const app = buildApiServer({
      store: new OrdersStore(ordersPool, outbox),
      saga: new TemporalSagaStatusReader(new Client({ connection, namespace: 'default' })),
      auth: createAuthenticator(apiAuthSettingsSchema.parse(env)),
      bodyLimitBytes: 16 * 1024,
    });
    servers.push(app);
    return app.listen({ port: 0, host: '127.0.0.1' });
  }

  beforeAll(async () => {
    await migrateAll(db);
    connection = await Connection.connect({ address: endpoints.temporalAddress });
    rsa = await signingKey('rsa-1', 'RS256');
    ec = await signingKey('ec-1', 'ES256');
    published.push(rsa.publicJwk, ec.publicJwk);
    jwks = await serveJwks(() => published);
    const jwtEnv = {
      KTS_API_AUTH: 'jwt',
      KTS_API_AUTH_JWKS_URL: jwks.url,
      KTS_API_AUTH_ISSUER: ISSUER,
      KTS_API_AUTH_AUDIENCE: `other-api,${AUDIENCE}`,
      KTS_API_AUTH_ALGORITHMS: 'RS256,ES256',
    };
    jwtUrl = await startApi(jwtEnv);
    staticUrl = await startApi({ KTS_API_AUTH: 'static', KTS_API_AUTH_STATIC_TOKENS: STATIC_TOKENS.join(',') });
    // A JWKS URL where nothing listens any more: the identity provider is down.
    const gone = await serveJwks(() => []);
    await gone.close();
    deadJwksUrl = await startApi({ ...jwtEnv, KTS_API_AUTH_JWKS_URL: gone.url, KTS_API_AUTH_JWKS_TIMEOUT_MS: '1000' });
  });

  afterAll(async () => {
    for (const s of servers) await s.close();
    await jwks?.close();
    await connection?.close();
    await ordersPool.end();
    await admin.end();
  });

  /** A token as the identity provider would issue it; `claims` override the standard ones. */
  const sign = (key: SigningKey, claims: JWTPayload = {}, opts: { kid?: string; exp?: number | null } = {}) => {
    const payload: JWTPayload = { iss: ISSUER, aud: AUDIENCE, sub: 'client-42', scope: 'orders:write', ...claims };
    const jwt = new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: opts.kid ?? key.kid }).setIssuedAt();
    if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? '5m');
    return jwt.sign(key.privateKey);
  };

  const order = (customerId: string) => ({
    customerId,
    currency: 'EUR',
    paymentToken: 'tok_visa',
    items: [{ sku: 'SKU-AUTH', quantity: 1, unitPriceMinor: 1_250 }],
  });

  interface Answer {
    status: number;
    headers: Record<string, string>;
    body: Record<string, unknown>;
  }

  async function call(base: string, method: string, path: string, token?: string, body?: unknown): Promise<Answer> {
    const headers: Record<string, string> = { 'idempotency-key': uniqueName('key') };
    if (token !== undefined) headers.authorization = token.includes(' ') ? token : `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: Object.fromEntries(res.headers.entries()),
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    };
  }

  /** What this suite has in PostgreSQL: orders of a customer, its outbox rows, its Idempotency-Key records. */
  async function rows(customerId: string): Promise<{ orders: number; outbox: number; keys: number }> {
    const r = await admin.query<{ orders: string; outbox: string; keys: string }>(
      `SELECT (SELECT count(*) FROM orders.orders WHERE customer_id = $1) AS orders,
              (SELECT count(*) FROM orders.outbox WHERE topic LIKE $2) AS outbox,
              (SELECT count(*) FROM orders.api_requests r JOIN orders.orders o USING (order_id)
                WHERE o.customer_id = $1) AS keys`,
      [customerId, `${prefix}%`],
    );
    const row = r.rows[0]!;
    return { orders: Number(row.orders), outbox: Number(row.outbox), keys: Number(row.keys) };
  }

  /** POSTs an order with `token`; expects the refusal `reason` and that nothing was written. */
  async function expectRefused(base: string, token: string | undefined, reason: AuthFailure): Promise<Answer> {
    const customerId = uniqueName('cust');
    const before = await rows(customerId);
    const res = await call(base, 'POST', '/orders', token, order(customerId));
    const status = reason === AuthFailure.KeysUnavailable ? 503 : 401;
    expect({ status: res.status, error: res.body.error, reason: res.body.reason }).toEqual({
      status,
      error: status === 401 ? ApiError.Unauthenticated : ApiError.AuthUnavailable,
      reason,
    });
    expect(typeof res.body.message).toBe('string');
    if (status === 401) {
      expect(res.headers['www-authenticate']).toMatch(new RegExp(`^Bearer realm="${AUTH_REALM}"`));
      if (reason !== AuthFailure.MissingToken) {
        expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
        expect(res.headers['www-authenticate']).toContain(`error_description="${String(res.body.message)}`);
      }
    } else {
      expect(res.headers['retry-after']).toBeDefined();
    }
    expect(await rows(customerId)).toEqual({ ...before, orders: 0, keys: 0 });
    return res;
  }

  async function expectPlaced(base: string, token: string | undefined): Promise<string> {
    const customerId = uniqueName('cust');
    const before = await rows(customerId);
    const res = await call(base, 'POST', '/orders', token, order(customerId));
    expect([res.status, res.body.status]).toEqual([201, 'PENDING']);
    expect(await rows(customerId)).toEqual({ orders: 1, outbox: before.outbox + 1, keys: 1 });
    return res.body.orderId as string;
  }

  describe('jwt mode', () => {
    it('places an order with a valid RS256 or ES256 token, fetching the JWKS once for all of them', async () => {
      for (let i = 0; i < 3; i++) await expectPlaced(jwtUrl, await sign(rsa));
      const orderId = await expectPlaced(jwtUrl, await sign(ec));
      const read = await call(jwtUrl, 'GET', `/orders/${orderId}`, await sign(ec));
      expect([read.status, read.body.orderId]).toEqual([200, orderId]);
      expect(jwks.hits()).toBe(1);
    });

    it('refuses a request without a token with the bare challenge', async () => {
      await expectRefused(jwtUrl, undefined, AuthFailure.MissingToken);
      await expectRefused(jwtUrl, 'Basic dXNlcjpwYXNz', AuthFailure.MissingToken);
    });

    it('refuses an expired token', async () => {
      // Past the 30 s clock tolerance of the default settings.
      const res = await expectRefused(
        jwtUrl,
        await sign(rsa, {}, { exp: Math.floor(Date.now() / 1000) - 120 }),
        AuthFailure.TokenExpired,
      );
      expect(res.body.message).toBe('the token has expired');
    });

    it('refuses a token for another audience, or from another issuer', async () => {
      await expectRefused(jwtUrl, await sign(rsa, { aud: 'billing-api' }), AuthFailure.WrongAudience);
      await expectRefused(jwtUrl, await sign(rsa, { iss: 'https://evil.test.invalid/' }), AuthFailure.WrongIssuer);
    });

    it('refuses a token signed by a key the JWKS does not hold, under a known kid', async () => {
      const forger = await signingKey(rsa.kid, 'RS256');
      await expectRefused(jwtUrl, await sign(forger), AuthFailure.BadSignature);
    });

    it('refuses a valid token whose claims were changed after signing', async () => {
      const [header, , signature] = (await sign(rsa)).split('.');
      const payload = Buffer.from(
        JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'admin', exp: Math.floor(Date.now() / 1000) + 600 }),
      ).toString('base64url');
      await expectRefused(jwtUrl, `${header}.${payload}.${signature}`, AuthFailure.BadSignature);
    });

    it('refuses a token naming a key id the JWKS does not have', async () => {
      const stranger = await signingKey('rsa-unknown', 'RS256');
      await expectRefused(jwtUrl, await sign(stranger), AuthFailure.UnknownKey);
    });

    it('refuses algorithms outside the settings: HS256 with a guessed secret, and alg none', async () => {
      const hs = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a-secret-the-attacker-chose-0123456789'));
      await expectRefused(jwtUrl, hs, AuthFailure.AlgorithmNotAllowed);
      const none = new UnsecuredJWT({}).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode();
      await expectRefused(jwtUrl, none, AuthFailure.AlgorithmNotAllowed);
    });

    it('refuses a token without an expiry, and one that is not a JWT at all', async () => {
      await expectRefused(jwtUrl, await sign(rsa, {}, { exp: null }), AuthFailure.ClaimInvalid);
      await expectRefused(jwtUrl, 'not-a-jwt', AuthFailure.MalformedToken);
    });

    it('refuses a cancel without a token, and the order stays as it was', async () => {
      const orderId = await expectPlaced(jwtUrl, await sign(rsa));
      const outboxBefore = (await rows('-')).outbox;
      const res = await call(jwtUrl, 'POST', `/orders/${orderId}/cancel`, undefined, { reason: 'not mine' });
      expect([res.status, res.body.reason]).toEqual([401, AuthFailure.MissingToken]);
      expect((await rows('-')).outbox).toBe(outboxBefore);
      const after = await call(jwtUrl, 'GET', `/orders/${orderId}`, await sign(rsa));
      expect(after.body.status).toBe('PENDING');
      const reads = await call(jwtUrl, 'GET', `/orders/${orderId}`);
      expect([reads.status, reads.body.reason, reads.body.customerId]).toEqual([
        401,
        AuthFailure.MissingToken,
        undefined,
      ]);
    });

    it('accepts a key the identity provider rotated in later, without a restart', async () => {
      // jose refetches the JWKS for an unknown kid at most once per 30 s cooldown; keep asking until then.
      const rotated = await signingKey('rsa-2', 'RS256');
      published.push(rotated.publicJwk);
      const hitsBefore = jwks.hits();
      const customerId = uniqueName('cust');
      const res = await waitUntil(
        'the rotated key to be accepted',
        async () => {
          const answer = await call(jwtUrl, 'POST', '/orders', await sign(rotated), order(customerId));
          if (answer.status === 401) expect(answer.body.reason).toBe(AuthFailure.UnknownKey);
          return answer;
        },
        (answer) => answer.status !== 401,
        { timeoutMs: 60_000, intervalMs: 2_000 },
      );
      expect(res.status).toBe(201);
      expect((await rows(customerId)).orders).toBe(1);
      expect(jwks.hits()).toBe(hitsBefore + 1);
    });

    it('answers 503, not 401, when the JWKS cannot be fetched, and writes nothing', async () => {
      const res = await expectRefused(deadJwksUrl, await sign(rsa), AuthFailure.KeysUnavailable);
      expect(res.body.message).toMatch(/could not be fetched from the JWKS URL/);
    });
  });

  describe('static mode', () => {
    it('places an order with any configured token', async () => {
      await expectPlaced(staticUrl, STATIC_TOKENS[0]);
      await expectPlaced(staticUrl, STATIC_TOKENS[1]);
    });

    it('refuses a missing, unknown or truncated token, and a valid JWT (another mode)', async () => {
      await expectRefused(staticUrl, undefined, AuthFailure.MissingToken);
      await expectRefused(staticUrl, `st1-${randomUUID()}-${randomUUID()}`, AuthFailure.UnknownToken);
      await expectRefused(staticUrl, STATIC_TOKENS[0]!.slice(0, -1), AuthFailure.UnknownToken);
      await expectRefused(staticUrl, await sign(rsa), AuthFailure.UnknownToken);
    });
  });

  describe('open routes', () => {
    it.each([
      ['jwt', () => jwtUrl],
      ['static', () => staticUrl],
    ])('%s: /healthz and /openapi.json answer without a token; every other route wants one', async (_mode, base) => {
      const health = await call(base(), 'GET', '/healthz');
      expect([health.status, health.body]).toEqual([200, { status: 'ok' }]);
      const doc = await call(base(), 'GET', '/openapi.json');
      expect([doc.status, doc.body.security]).toEqual([200, [{ bearerAuth: [] }]]);
      // Unknown routes are not revealed to anonymous callers either.
      const unknown = await call(base(), 'GET', '/admin');
      expect([unknown.status, unknown.body.reason]).toEqual([401, AuthFailure.MissingToken]);
    });
  });

  it('is off by default: the same server without auth settings serves anonymous callers', async () => {
    const openUrl = await startApi({});
    await expectPlaced(openUrl, undefined);
  });
});
