/**
 * Bearer-token authentication of the Orders API, independent of the HTTP framework: given the
 * Authorization header, says who the caller is or exactly why it is refused.
 *
 * - jwt: the token is a JWT signed by the identity provider. `jose` verifies the signature with
 *   the key named by the token's `kid` from the provider's JWKS (fetched on first use, cached, and
 *   refetched at most every 30 s when a token names a key it does not know, which is how key
 *   rotation reaches us), then the algorithm, issuer, audience, `exp` (required) and `nbf`.
 * - static: the token must equal one of a configured list (compared in constant time).
 *
 * Every refusal carries a failure type string (AuthFailure) that the 401 body and the
 * WWW-Authenticate header (RFC 6750) report.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';

import type { ApiAuthSettings, JwtAuthSettings } from './auth-settings';

/** Why a request was refused: the `reason` of the 401/503 body. Clients may match on these. */
export const AuthFailure = {
  /** No Authorization header, or one with another scheme than Bearer. */
  MissingToken: 'MissingToken',
  /** A Bearer credential that is not a well-formed token (or not a JWS-signed JWT). */
  MalformedToken: 'MalformedToken',
  TokenExpired: 'TokenExpired',
  TokenNotYetValid: 'TokenNotYetValid',
  WrongAudience: 'WrongAudience',
  WrongIssuer: 'WrongIssuer',
  /** Another claim check failed, e.g. the required `exp` is missing. */
  ClaimInvalid: 'ClaimInvalid',
  AlgorithmNotAllowed: 'AlgorithmNotAllowed',
  /** The token's `kid` names no key in the JWKS (or it names none and the set has several). */
  UnknownKey: 'UnknownKey',
  /** The signature does not verify with the key the token names. */
  BadSignature: 'BadSignature',
  /** static mode: the token is not one of the configured ones. */
  UnknownToken: 'UnknownToken',
  /** The JWKS could not be fetched or read: not the caller's fault, so 503 rather than 401. */
  KeysUnavailable: 'KeysUnavailable',
} as const;
export type AuthFailure = (typeof AuthFailure)[keyof typeof AuthFailure];

/** The authenticated caller: `sub` of the JWT, or which static token matched (never the token). */
export interface Principal {
  via: 'jwt' | 'static';
  subject: string;
}

export type AuthResult =
  | { ok: true; principal: Principal | null }
  | { ok: false; status: 401 | 503; reason: AuthFailure; message: string; wwwAuthenticate?: string };

export interface Authenticator {
  readonly mode: ApiAuthSettings['mode'];
  /** Checks one request's Authorization header (undefined when absent). Never throws. */
  authenticate(authorization: string | undefined): Promise<AuthResult>;
}

/** Realm named in WWW-Authenticate. */
export const AUTH_REALM = 'kts-orders-api';

// RFC 6750 b64token: the only characters a bearer credential may hold.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** RFC 6750 §3: quoted-string values may not hold `"` or `\`; keep the description plain ASCII. */
function challenge(error?: { code: 'invalid_token'; description: string }): string {
  if (!error) return `Bearer realm="${AUTH_REALM}"`;
  const description = error.description.replace(/[^\x20-\x7e]|["\\]/g, "'");
  return `Bearer realm="${AUTH_REALM}", error="${error.code}", error_description="${description}"`;
}

function refuse(reason: AuthFailure, message: string): AuthResult {
  if (reason === AuthFailure.KeysUnavailable) return { ok: false, status: 503, reason, message };
  // A request with no credentials gets the bare challenge (RFC 6750 §3.1); a bad one gets invalid_token.
  const wwwAuthenticate =
    reason === AuthFailure.MissingToken ? challenge() : challenge({ code: 'invalid_token', description: message });
  return { ok: false, status: 401, reason, message, wwwAuthenticate };
}

/** The bearer token of an Authorization header, or the refusal to send. */
function bearerToken(authorization: string | undefined): { token: string } | { refused: AuthResult } {
  if (authorization === undefined || !/^Bearer\b/i.test(authorization.trim())) {
    return { refused: refuse(AuthFailure.MissingToken, 'send the header Authorization: Bearer <token>') };
  }
  const m = BEARER.exec(authorization.trim());
  if (!m?.[1]) return { refused: refuse(AuthFailure.MalformedToken, 'the bearer token is not well formed') };
  return { token: m[1] };
}

/** Maps what jose threw to the reason told to the caller. */
function jwtFailure(err: unknown, settings: JwtAuthSettings): AuthResult {
  const code = (err as { code?: unknown }).code;
  if (err instanceof joseErrors.JWTExpired) return refuse(AuthFailure.TokenExpired, 'the token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') {
      return refuse(
        AuthFailure.WrongAudience,
        `the token is not meant for this API (audience ${settings.audience.join(' or ')})`,
      );
    }
    if (err.claim === 'iss') return refuse(AuthFailure.WrongIssuer, `the token was not issued by ${settings.issuer}`);
    if (err.claim === 'nbf') return refuse(AuthFailure.TokenNotYetValid, 'the token is not valid yet (nbf)');
    return refuse(AuthFailure.ClaimInvalid, `claim ${err.claim}: ${err.reason === 'missing' ? 'missing' : 'invalid'}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return refuse(
      AuthFailure.AlgorithmNotAllowed,
      `the token's algorithm is not one of ${settings.algorithms.join(', ')}`,
    );
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return refuse(AuthFailure.UnknownKey, 'no key of the JWKS matches the token (kid and algorithm)');
  }
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return refuse(AuthFailure.UnknownKey, 'the token names no kid and several keys of the JWKS could match');
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return refuse(AuthFailure.BadSignature, 'the token signature does not verify');
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) {
    return refuse(AuthFailure.MalformedToken, 'the token is not a signed JWT');
  }
  if (err instanceof joseErrors.JOSENotSupported) {
    return refuse(AuthFailure.AlgorithmNotAllowed, 'the token uses an algorithm or key type not supported');
  }
  // What is left is the key fetch itself: timeout, refused connection, non-200, not a JWKS.
  const why =
    code === 'ERR_JWKS_TIMEOUT'
      ? 'timed out'
      : err instanceof Error
        ? `${typeof code === 'string' ? `${code}: ` : ''}${err.message}`
        : String(err);
  return refuse(AuthFailure.KeysUnavailable, `the signing keys could not be fetched from the JWKS URL (${why})`);
}

function jwtAuthenticator(settings: JwtAuthSettings): Authenticator {
  // jose owns the cache: keys are reused for jwksCacheSeconds, and an unknown kid triggers at most
  // one refetch per cooldown, so a flood of forged kids cannot hammer the identity provider.
  const keys = createRemoteJWKSet(settings.jwksUrl, {
    timeoutDuration: settings.jwksTimeoutMs,
    cacheMaxAge: settings.jwksCacheSeconds * 1000,
  });
  return {
    mode: 'jwt',
    async authenticate(authorization) {
      const bearer = bearerToken(authorization);
      if ('refused' in bearer) return bearer.refused;
      try {
        const { payload } = await jwtVerify(bearer.token, keys, {
          issuer: settings.issuer,
          audience: settings.audience,
          algorithms: settings.algorithms,
          clockTolerance: settings.clockToleranceSeconds,
          // A token without an expiry would be valid forever once leaked.
          requiredClaims: ['exp'],
        });
        const subject = payload.sub ?? (typeof payload.client_id === 'string' ? payload.client_id : '(no sub)');
        return { ok: true, principal: { via: 'jwt', subject } };
      } catch (err) {
        return jwtFailure(err, settings);
      }
    },
  };
}

function staticAuthenticator(tokens: string[]): Authenticator {
  // Digests have equal length, so timingSafeEqual applies; every token is compared on every request.
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  const known = tokens.map(digest);
  return {
    mode: 'static',
    authenticate(authorization) {
      const bearer = bearerToken(authorization);
      if ('refused' in bearer) return Promise.resolve(bearer.refused);
      const presented = digest(bearer.token);
      let matched = -1;
      known.forEach((k, i) => {
        if (timingSafeEqual(k, presented) && matched < 0) matched = i;
      });
      if (matched < 0)
        return Promise.resolve(refuse(AuthFailure.UnknownToken, 'the token is not one of the accepted tokens'));
      return Promise.resolve({ ok: true, principal: { via: 'static', subject: `static-token-${matched + 1}` } });
    },
  };
}

/** Lets every request through: the local stack's default, where the API listens on loopback only. */
const openAuthenticator: Authenticator = {
  mode: 'off',
  authenticate: () => Promise.resolve({ ok: true, principal: null }),
};

/** Builds the authenticator the settings ask for. Nothing is fetched until the first request. */
export function createAuthenticator(settings: ApiAuthSettings): Authenticator {
  switch (settings.mode) {
    case 'off':
      return openAuthenticator;
    case 'jwt':
      return jwtAuthenticator(settings);
    case 'static':
      return staticAuthenticator(settings.tokens);
  }
}
