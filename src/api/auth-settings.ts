/**
 * Settings of the Orders API's authentication, as one small zod section: the variables it reads
 * (each with a description, so help text and docs come from here) and the typed result. Kept on
 * its own so the process-wide settings model can embed it as a section.
 *
 * Off by default: the local stack serves the API on 127.0.0.1 only. Exposing it anywhere else
 * means turning on `jwt` (tokens from an identity provider, verified against its JWKS) or
 * `static` (a short list of shared secrets, for a single trusted caller).
 */
import { z } from 'zod';

/** JWS algorithms the API may accept: asymmetric only, so a public JWKS can never sign a token. */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** Shortest static token accepted: 32 characters, e.g. `openssl rand -hex 16` or longer. */
export const MIN_STATIC_TOKEN_LENGTH = 32;

const list = (raw: string | undefined): string[] =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);
const isLoopback = (host: string) => LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** The environment variables of the API's authentication, one described zod field each. */
export const apiAuthEnvSchema = z.object({
  KTS_API_AUTH: z
    .enum(['off', 'jwt', 'static'])
    .default('off')
    .describe(
      'Authentication of the Orders API: off (the local default), jwt (bearer JWTs checked against ' +
        'KTS_API_AUTH_JWKS_URL), static (bearer tokens from KTS_API_AUTH_STATIC_TOKENS).',
    ),
  KTS_API_AUTH_JWKS_URL: z
    .string()
    .optional()
    .describe(
      'jwt mode: URL of the identity provider’s JSON Web Key Set (https; plain http only on a loopback ' +
        'address). Keys are fetched on first use, cached and refetched when a token names an unknown key.',
    ),
  KTS_API_AUTH_ISSUER: z
    .string()
    .optional()
    .describe('jwt mode: the exact `iss` claim tokens must carry (the identity provider’s issuer URL).'),
  KTS_API_AUTH_AUDIENCE: z
    .string()
    .optional()
    .describe('jwt mode: comma-separated accepted `aud` values; a token must name at least one of them.'),
  KTS_API_AUTH_ALGORITHMS: z
    .string()
    .default('RS256,ES256')
    .describe(`jwt mode: comma-separated accepted signature algorithms, from ${JWT_ALGORITHMS.join(', ')}.`),
  KTS_API_AUTH_CLOCK_TOLERANCE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(300)
    .default(30)
    .describe('jwt mode: clock skew allowed when checking `exp` and `nbf`, in seconds.'),
  KTS_API_AUTH_JWKS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(5_000)
    .describe('jwt mode: how long one fetch of the JWKS may take before the request gets 503.'),
  KTS_API_AUTH_JWKS_CACHE_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(600)
    .describe('jwt mode: how long fetched keys are used before the JWKS is fetched again.'),
  KTS_API_AUTH_STATIC_TOKENS: z
    .string()
    .optional()
    .describe(
      `static mode: comma-separated bearer tokens, each at least ${MIN_STATIC_TOKEN_LENGTH} characters ` +
        '(several allow rotating one without downtime). A secret: pass it from a secret store.',
    ),
});

export interface JwtAuthSettings {
  mode: 'jwt';
  jwksUrl: URL;
  issuer: string;
  audience: string[];
  algorithms: JwtAlgorithm[];
  clockToleranceSeconds: number;
  jwksTimeoutMs: number;
  jwksCacheSeconds: number;
}

export interface StaticAuthSettings {
  mode: 'static';
  tokens: string[];
}

export type ApiAuthSettings = { mode: 'off' } | JwtAuthSettings | StaticAuthSettings;

/** The parsed section: the raw variables checked together, then turned into {@link ApiAuthSettings}. */
export const apiAuthSettingsSchema = apiAuthEnvSchema.transform((e, ctx): ApiAuthSettings => {
  const issue = (path: keyof typeof e, message: string) => {
    ctx.addIssue({ code: 'custom', path: [path], message });
    return z.NEVER;
  };
  if (e.KTS_API_AUTH === 'off') return { mode: 'off' };

  if (e.KTS_API_AUTH === 'static') {
    const tokens = list(e.KTS_API_AUTH_STATIC_TOKENS);
    if (tokens.length === 0) return issue('KTS_API_AUTH_STATIC_TOKENS', 'static mode needs at least one token');
    if (tokens.some((t) => t.length < MIN_STATIC_TOKEN_LENGTH)) {
      return issue('KTS_API_AUTH_STATIC_TOKENS', `every token needs at least ${MIN_STATIC_TOKEN_LENGTH} characters`);
    }
    if (tokens.some((t) => !/^[\x21-\x7e]+$/.test(t))) {
      return issue('KTS_API_AUTH_STATIC_TOKENS', 'tokens may hold printable ASCII only, without spaces');
    }
    return { mode: 'static', tokens };
  }

  if (!e.KTS_API_AUTH_JWKS_URL) return issue('KTS_API_AUTH_JWKS_URL', 'jwt mode needs the JWKS URL');
  let jwksUrl: URL;
  try {
    jwksUrl = new URL(e.KTS_API_AUTH_JWKS_URL);
  } catch {
    return issue('KTS_API_AUTH_JWKS_URL', 'not a URL');
  }
  // Keys fetched over plain http from another host could be swapped in transit, and with them
  // anyone could mint accepted tokens.
  if (jwksUrl.protocol !== 'https:' && !(jwksUrl.protocol === 'http:' && isLoopback(jwksUrl.hostname))) {
    return issue('KTS_API_AUTH_JWKS_URL', 'must be https (http only on a loopback address)');
  }
  // Without both checks a token the same provider issued for another application would be accepted.
  if (!e.KTS_API_AUTH_ISSUER?.trim()) return issue('KTS_API_AUTH_ISSUER', 'jwt mode needs the expected issuer');
  const audience = list(e.KTS_API_AUTH_AUDIENCE);
  if (audience.length === 0) return issue('KTS_API_AUTH_AUDIENCE', 'jwt mode needs at least one audience');
  const algorithms = list(e.KTS_API_AUTH_ALGORITHMS);
  const unknown = algorithms.filter((a) => !(JWT_ALGORITHMS as readonly string[]).includes(a));
  if (algorithms.length === 0 || unknown.length > 0) {
    return issue(
      'KTS_API_AUTH_ALGORITHMS',
      `${unknown.length > 0 ? `not accepted: ${unknown.join(', ')}; ` : ''}choose from ${JWT_ALGORITHMS.join(', ')}`,
    );
  }
  return {
    mode: 'jwt',
    jwksUrl,
    issuer: e.KTS_API_AUTH_ISSUER.trim(),
    audience,
    algorithms: algorithms as JwtAlgorithm[],
    clockToleranceSeconds: e.KTS_API_AUTH_CLOCK_TOLERANCE_SECONDS,
    jwksTimeoutMs: e.KTS_API_AUTH_JWKS_TIMEOUT_MS,
    jwksCacheSeconds: e.KTS_API_AUTH_JWKS_CACHE_SECONDS,
  };
});

/** Parses the section from the environment once, failing fast with one readable line. */
export function loadApiAuthSettings(env: NodeJS.ProcessEnv = process.env): ApiAuthSettings {
  const parsed = apiAuthSettingsSchema.safeParse(env);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`).join('; ');
    throw new Error(`invalid API authentication settings: ${why}`);
  }
  return parsed.data;
}
