/**
 * A small client for the Confluent-compatible schema registry API (Apicurio's /apis/ccompat/v7).
 * Schemas are immutable per id, so lookups by id are cached forever.
 */
import http from 'node:http';
import https from 'node:https';

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'NONE';

export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    message: string,
    readonly status: number | undefined,
    /** Registry error code (e.g. 40401 subject not found, 40403 schema not found, 409 incompatible). */
    readonly code: number | undefined,
  ) {
    super(message);
  }
  /** 4xx answers are about the request (unknown id, incompatible schema); anything else may pass. */
  get transient(): boolean {
    return this.status === undefined || this.status >= 500 || this.status === 429;
  }
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** Where the registry is and how to log in (see the registry section of the settings). */
export interface RegistryOptions {
  url: string;
  username?: string;
  password?: string;
  /** PEM text of the CA of an https registry whose certificate is not in Node's default store. */
  ca?: string;
}

interface RawResponse {
  status: number;
  text: string;
}

/** One HTTP exchange through node:http(s), so a private CA applies to this client only. */
function send(
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string; ca?: string; timeoutMs: number },
) {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise<RawResponse>((resolve, reject) => {
    const req = mod.request(
      url,
      { method: init.method, headers: init.headers, ca: init.ca, timeout: init.timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${init.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

export class RegistryClient {
  private readonly byId = new Map<number, Promise<string>>();
  private readonly options: RegistryOptions;
  private readonly baseUrl: string;

  constructor(
    options: RegistryOptions | string,
    private readonly timeoutMs = 5000,
  ) {
    this.options = typeof options === 'string' ? { url: options } : options;
    this.baseUrl = this.options.url.replace(/\/+$/, '');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { 'Content-Type': CONTENT_TYPE, Accept: CONTENT_TYPE };
    const { username, password } = this.options;
    if (username !== undefined) {
      headers.Authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    }
    let res: RawResponse;
    try {
      res = await send(new URL(`${this.baseUrl}${path}`), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        ca: this.options.ca,
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      throw new RegistryError(
        `registry unreachable at ${this.baseUrl}: ${(err as Error).message}`,
        undefined,
        undefined,
      );
    }
    if (res.status === 401 || res.status === 403) {
      // One line that says what to fix; retrying the same credentials cannot help.
      throw new RegistryError(
        username === undefined
          ? `schema registry at ${this.baseUrl} requires credentials (${res.status}): set KTS_REGISTRY_USERNAME/PASSWORD`
          : `schema registry refused the credentials for user ${username} at ${this.baseUrl}: check KTS_REGISTRY_USERNAME/PASSWORD`,
        res.status,
        undefined,
      );
    }
    let json: unknown;
    try {
      json = res.text ? (JSON.parse(res.text) as unknown) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status < 200 || res.status >= 300) {
      const e = (json ?? {}) as { error_code?: number; message?: string };
      throw new RegistryError(`${method} ${path}: ${res.status} ${e.message ?? res.text}`, res.status, e.error_code);
    }
    if (json === undefined && res.text) {
      throw new RegistryError(
        `${method} ${path}: the answer is not JSON: ${res.text.slice(0, 200)}`,
        res.status,
        undefined,
      );
    }
    return json as T;
  }

  /**
   * Registers (or finds) an Avro schema under a subject; idempotent for an identical schema. Only
   * provisioning calls this (src/provision): a producer looks its schema up with {@link lookup}.
   */
  async register(subject: string, schema: object | string): Promise<number> {
    const schemaText = typeof schema === 'string' ? schema : JSON.stringify(schema);
    const { id } = await this.call<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, {
      schemaType: 'AVRO',
      schema: schemaText,
    });
    this.byId.set(id, Promise.resolve(schemaText));
    return id;
  }

  /** The schema text for an id, fetched once. */
  schemaById(id: number): Promise<string> {
    let cached = this.byId.get(id);
    if (!cached) {
      cached = this.call<{ schema: string }>('GET', `/schemas/ids/${id}`).then((r) => r.schema);
      // Failures are not cached: a registry outage must not poison the id forever.
      cached.catch(() => this.byId.delete(id));
      this.byId.set(id, cached);
    }
    return cached;
  }

  /**
   * The registered version and id of exactly this schema under a subject, or null when the subject
   * does not hold it (or does not exist). Never registers anything.
   */
  async lookup(subject: string, schema: object | string): Promise<{ id: number; version: number } | null> {
    const schemaText = typeof schema === 'string' ? schema : JSON.stringify(schema);
    try {
      const r = await this.call<{ id: number; version: number }>('POST', `/subjects/${encodeURIComponent(subject)}`, {
        schemaType: 'AVRO',
        schema: schemaText,
      });
      this.byId.set(r.id, Promise.resolve(schemaText));
      return { id: r.id, version: r.version };
    } catch (err) {
      // 40401 no such subject, 40403 the subject does not hold this schema.
      if (err instanceof RegistryError && (err.code === 40401 || err.code === 40403 || err.status === 404)) return null;
      throw err;
    }
  }

  /** The subject's version numbers, oldest first; empty when the subject does not exist. */
  async versions(subject: string): Promise<number[]> {
    try {
      return await this.call<number[]>('GET', `/subjects/${encodeURIComponent(subject)}/versions`);
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) return [];
      throw err;
    }
  }

  /** One version of a subject (`latest` is what Confluent's use.latest.version producers take). */
  version(subject: string, version: number | 'latest'): Promise<{ id: number; version: number; schema: string }> {
    return this.call('GET', `/subjects/${encodeURIComponent(subject)}/versions/${version}`);
  }

  /** The compatibility level set on the subject itself, or null when it only inherits the global one. */
  async subjectCompatibility(subject: string): Promise<Compatibility | null> {
    try {
      const r = await this.call<{ compatibilityLevel?: Compatibility; compatibility?: Compatibility }>(
        'GET',
        `/config/${encodeURIComponent(subject)}`,
      );
      return r.compatibilityLevel ?? r.compatibility ?? null;
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) return null;
      throw err;
    }
  }

  /** Deletes a subject for good (soft, then permanent); the schemas' ids stay, they are content-addressed. */
  async deleteSubject(subject: string): Promise<void> {
    const s = encodeURIComponent(subject);
    await this.call('DELETE', `/subjects/${s}`);
    await this.call('DELETE', `/subjects/${s}?permanent=true`);
  }

  async setCompatibility(subject: string, level: Compatibility): Promise<void> {
    await this.call('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
  }

  /** Asks the registry whether a schema could be added to a subject without breaking its readers. */
  async isCompatible(subject: string, schema: object | string): Promise<boolean> {
    const schemaText = typeof schema === 'string' ? schema : JSON.stringify(schema);
    const r = await this.call<{ is_compatible: boolean }>(
      'POST',
      `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`,
      { schemaType: 'AVRO', schema: schemaText },
    );
    return r.is_compatible;
  }

  subjects(): Promise<string[]> {
    return this.call<string[]>('GET', '/subjects');
  }

  /** The newest version of a subject and its schema text; undefined when the subject does not exist. */
  async latest(subject: string): Promise<{ version: number; schema: string } | undefined> {
    try {
      return await this.call<{ version: number; schema: string }>(
        'GET',
        `/subjects/${encodeURIComponent(subject)}/versions/latest`,
      );
    } catch (err) {
      if (err instanceof RegistryError && err.code === 40401) return undefined;
      throw err;
    }
  }

  /** The compatibility level the registry enforces on a subject (its own, or the global default). */
  async compatibilityLevel(subject: string): Promise<string> {
    try {
      const r = await this.call<{ compatibilityLevel: string }>('GET', `/config/${encodeURIComponent(subject)}`);
      return r.compatibilityLevel;
    } catch (err) {
      if (!(err instanceof RegistryError) || err.status !== 404) throw err;
      const r = await this.call<{ compatibilityLevel: string }>('GET', '/config');
      return r.compatibilityLevel;
    }
  }
}
