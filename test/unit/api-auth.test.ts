import { AUTH_REALM, AuthFailure, createAuthenticator } from '../../src/api/auth';
import { apiAuthEnvSchema, apiAuthSettingsSchema, loadApiAuthSettings } from '../../src/api/auth-settings';
import { buildOpenApiDocument } from '../../src/api/openapi';

const TOKEN_A = 'a'.repeat(20) + '-first-static-token';
const TOKEN_B = 'b'.repeat(20) + '-second-static-token';
const jwtEnv = {
  KTS_API_AUTH: 'jwt',
  KTS_API_AUTH_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
  KTS_API_AUTH_ISSUER: 'https://idp.example.com/',
  KTS_API_AUTH_AUDIENCE: 'orders-api, orders-api-2',
};

/** The error line loadApiAuthSettings throws for `env`. */
function settingsError(env: Record<string, string>): string {
  try {
    loadApiAuthSettings(env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the settings to be refused');
}

describe('API authentication settings', () => {
  it('are off when nothing is set (the local stack)', () => {
    expect(loadApiAuthSettings({})).toEqual({ mode: 'off' });
  });

  it('describe every variable (the text of --help and the docs)', () => {
    const described = Object.entries(apiAuthEnvSchema.shape).map(([name, field]) => [name, field.description ?? '']);
    expect(described.length).toBeGreaterThanOrEqual(9);
    for (const [name, text] of described) expect([name, (text ?? '').length > 20]).toEqual([name, true]);
  });

  it('parse jwt mode with its defaults: RS256/ES256, 30 s clock tolerance, 5 s fetch timeout, 10 min cache', () => {
    expect(loadApiAuthSettings(jwtEnv)).toEqual({
      mode: 'jwt',
      jwksUrl: new URL(jwtEnv.KTS_API_AUTH_JWKS_URL),
      issuer: 'https://idp.example.com/',
      audience: ['orders-api', 'orders-api-2'],
      algorithms: ['RS256', 'ES256'],
      clockToleranceSeconds: 30,
      jwksTimeoutMs: 5_000,
      jwksCacheSeconds: 600,
    });
  });

  it.each([
    [{ KTS_API_AUTH_JWKS_URL: '' }, 'KTS_API_AUTH_JWKS_URL: jwt mode needs the JWKS URL'],
    [{ KTS_API_AUTH_JWKS_URL: 'not a url' }, 'KTS_API_AUTH_JWKS_URL: not a URL'],
    [{ KTS_API_AUTH_JWKS_URL: 'http://idp.example.com/jwks' }, 'KTS_API_AUTH_JWKS_URL: must be https'],
    [{ KTS_API_AUTH_ISSUER: ' ' }, 'KTS_API_AUTH_ISSUER: jwt mode needs the expected issuer'],
    [{ KTS_API_AUTH_AUDIENCE: ' , ' }, 'KTS_API_AUTH_AUDIENCE: jwt mode needs at least one audience'],
    [{ KTS_API_AUTH_ALGORITHMS: 'RS256,HS256' }, 'KTS_API_AUTH_ALGORITHMS: not accepted: HS256'],
    [{ KTS_API_AUTH_ALGORITHMS: 'none' }, 'KTS_API_AUTH_ALGORITHMS: not accepted: none'],
    [{ KTS_API_AUTH_CLOCK_TOLERANCE_SECONDS: '3600' }, 'KTS_API_AUTH_CLOCK_TOLERANCE_SECONDS'],
    [{ KTS_API_AUTH: 'basic' }, 'KTS_API_AUTH'],
  ])('refuse an incomplete or unsafe jwt setup %#', (over, expected) => {
    const message = settingsError({ ...jwtEnv, ...over });
    expect(message).toMatch(/^invalid API authentication settings: /);
    expect(message).toContain(expected);
  });

  it('accept plain http for a JWKS on a loopback address only', () => {
    for (const url of ['http://127.0.0.1:8080/jwks', 'http://127.1.2.3/jwks', 'http://localhost:9000/jwks']) {
      expect(loadApiAuthSettings({ ...jwtEnv, KTS_API_AUTH_JWKS_URL: url }).mode).toBe('jwt');
    }
    expect(settingsError({ ...jwtEnv, KTS_API_AUTH_JWKS_URL: 'http://10.0.0.1/jwks' })).toContain('must be https');
  });

  it('parse static mode and refuse empty, short or non-printable tokens', () => {
    expect(
      loadApiAuthSettings({ KTS_API_AUTH: 'static', KTS_API_AUTH_STATIC_TOKENS: ` ${TOKEN_A} ,${TOKEN_B}` }),
    ).toEqual({ mode: 'static', tokens: [TOKEN_A, TOKEN_B] });
    expect(settingsError({ KTS_API_AUTH: 'static' })).toContain('static mode needs at least one token');
    expect(settingsError({ KTS_API_AUTH: 'static', KTS_API_AUTH_STATIC_TOKENS: `${TOKEN_A},short` })).toContain(
      'at least 32 characters',
    );
    expect(settingsError({ KTS_API_AUTH: 'static', KTS_API_AUTH_STATIC_TOKENS: `${TOKEN_A}\u00e9\u00e9` })).toContain(
      'printable ASCII',
    );
  });

  it('are one zod schema another settings model can embed', () => {
    const r = apiAuthSettingsSchema.safeParse({ KTS_API_AUTH: 'static', KTS_API_AUTH_STATIC_TOKENS: TOKEN_A });
    expect(r.success && r.data.mode).toBe('static');
  });
});

describe('static-token authenticator', () => {
  const auth = createAuthenticator({ mode: 'static', tokens: [TOKEN_A, TOKEN_B] });

  it('accepts each configured token and names which one matched, never the token', async () => {
    await expect(auth.authenticate(`Bearer ${TOKEN_A}`)).resolves.toEqual({
      ok: true,
      principal: { via: 'static', subject: 'static-token-1' },
    });
    await expect(auth.authenticate(`bearer   ${TOKEN_B}`)).resolves.toEqual({
      ok: true,
      principal: { via: 'static', subject: 'static-token-2' },
    });
  });

  it.each([
    [undefined, AuthFailure.MissingToken],
    [`Basic ${Buffer.from('user:pass').toString('base64')}`, AuthFailure.MissingToken],
    ['Bearer', AuthFailure.MalformedToken],
    ['Bearer ', AuthFailure.MalformedToken],
    ['Bearer two words', AuthFailure.MalformedToken],
    [`Bearer ${TOKEN_A}x`, AuthFailure.UnknownToken],
    [`Bearer ${TOKEN_A.slice(0, -1)}`, AuthFailure.UnknownToken],
    [TOKEN_A, AuthFailure.MissingToken],
  ])('refuses %p as %s, with an RFC 6750 challenge', async (header, reason) => {
    const r = await auth.authenticate(header);
    if (r.ok) throw new Error('expected a refusal');
    expect([r.status, r.reason]).toEqual([401, reason]);
    if (reason === AuthFailure.MissingToken) {
      expect(r.wwwAuthenticate).toBe(`Bearer realm="${AUTH_REALM}"`);
    } else {
      expect(r.wwwAuthenticate).toMatch(
        new RegExp(`^Bearer realm="${AUTH_REALM}", error="invalid_token", error_description="[^"\\\\]+"$`),
      );
    }
  });

  it('lets everything through when off', async () => {
    await expect(createAuthenticator({ mode: 'off' }).authenticate(undefined)).resolves.toEqual({
      ok: true,
      principal: null,
    });
  });
});

describe('OpenAPI document', () => {
  it('asks for a bearer token on every orders operation only when authentication is on', () => {
    const open = buildOpenApiDocument() as { security?: unknown; paths: Record<string, Record<string, Op>> };
    expect(open.security).toBeUndefined();
    const guarded = buildOpenApiDocument({ authRequired: true }) as typeof open;
    expect(guarded.security).toEqual([{ bearerAuth: [] }]);
    for (const [path, ops] of Object.entries(guarded.paths)) {
      for (const op of Object.values(ops)) {
        if (path === '/healthz') {
          expect(op.security).toEqual([]);
          expect(op.responses['401']).toBeUndefined();
        } else {
          expect([path, Object.keys(op.responses)]).toEqual([path, expect.arrayContaining(['401', '503'])]);
        }
      }
    }
  });
});

interface Op {
  security?: unknown;
  responses: Record<string, unknown>;
}
