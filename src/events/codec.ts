/**
 * Avro events in the Confluent wire format, with schemas from the registry. Producers encode with
 * the schema file of the event's version, looked up under `<topic>-value` (provisioning registers
 * it); every consumer decodes through {@link EventCodec.decodeEvent}: the writer's schema fetched by
 * id, resolved to the reader schema of the event's declared version, validated, upcast.
 */
import avro from 'avsc';
import type { z } from 'zod';

import type { RegistryClient } from '../kafka/registry-client';
import { encodeFrame, frameSchemaId, HEADER_BYTES } from '../kafka/wire-format';
import { EVENT_CATALOG } from './generated/event-schemas';
import type { IngressEvent, IngressEventType, OrderCancelled, OrderPlaced } from './rules';
import { describeIssues, INGRESS_VALIDATORS, upcastOrderConfirmed, upcastOrderPlaced } from './rules';
import { valueSubject } from './topics';

/** Why a record is poison: the dead-letter `reason` header. Never retried; the partition moves on. */
export const DecodeFailure = {
  PayloadTooLarge: 'PayloadTooLarge',
  EmptyPayload: 'EmptyPayload',
  TruncatedPayload: 'TruncatedPayload',
  WrongMagicByte: 'WrongMagicByte',
  UnknownSchemaId: 'UnknownSchemaId',
  UnparseableSchema: 'UnparseableSchema',
  UndecodableBody: 'UndecodableBody',
  IncompatibleSchema: 'IncompatibleSchema',
  WrongEventType: 'WrongEventType',
  UnknownEventVersion: 'UnknownEventVersion',
  InvalidContent: 'InvalidContent',
} as const;
export type DecodeFailure = (typeof DecodeFailure)[keyof typeof DecodeFailure];

/** Which layer refused the record: the dead-letter `error-type` header. */
export const DecodeErrorType = {
  SizeLimit: 'SizeLimit',
  WireFormat: 'WireFormat',
  Registry: 'Registry',
  Avro: 'Avro',
  Validation: 'Validation',
} as const;
export type DecodeErrorType = (typeof DecodeErrorType)[keyof typeof DecodeErrorType];

export type DecodeOutcome = { ok: true; schemaId: number; value: IngressEvent } | DecodeRefusal;

/** The subject lacks the schema a producer needs: provisioning has not run (or is older than this build). */
export class SchemaNotProvisionedError extends Error {
  override name = 'SchemaNotProvisionedError';
  readonly type = 'SchemaNotProvisioned';
}

/** The registry could not answer now. Not the record's fault: the caller must retry, never skip. */
export class RegistryUnavailableError extends Error {
  override name = 'RegistryUnavailableError';
  readonly type = 'RegistryUnavailable';
}

type CatalogEntry = (typeof EVENT_CATALOG)[number];

const readerTypes = new Map<CatalogEntry, avro.Type>();
function readerType(entry: CatalogEntry): avro.Type {
  let t = readerTypes.get(entry);
  if (!t) {
    t = avro.Type.forSchema(entry.avsc as unknown as avro.Schema);
    readerTypes.set(entry, t);
  }
  return t;
}

/** Catalog entries by event type, then version: every decoded record looks one up. */
const catalogIndex = new Map<string, Map<number, CatalogEntry>>();
for (const e of EVENT_CATALOG) {
  let versions = catalogIndex.get(e.eventType);
  if (!versions) catalogIndex.set(e.eventType, (versions = new Map<number, CatalogEntry>()));
  if (!versions.has(e.version)) versions.set(e.version, e);
}

/** The catalog entry of an event type and version, if this build knows it. */
export function catalogEntry(eventType: string, version: number): CatalogEntry | undefined {
  return catalogIndex.get(eventType)?.get(version);
}

/**
 * Reads the Avro body that follows the frame's header in place (no Buffer sliced per record), with
 * the same checks as `Type.fromBuffer`: a body that ends early or leaves bytes over is refused.
 */
function readBody(type: avro.Type, payload: Buffer, resolver?: avro.Resolver): unknown {
  const read: { value: unknown; offset: number } = type.decode(payload, HEADER_BYTES, resolver);
  if (read.offset < 0) throw new Error('truncated buffer');
  if (read.offset < payload.length) throw new Error('trailing data');
  return read.value;
}

/**
 * How records of one writer schema are read as one catalog entry: directly when the writer's
 * schema is the entry's (the usual case), else through a resolver, or never (incompatible).
 */
type ReadPlan = { same: true } | { same: false; resolver: avro.Resolver | Error };

type DecodeRefusal = { ok: false; reason: DecodeFailure; errorType: DecodeErrorType; message: string };

function fail(reason: DecodeFailure, errorType: DecodeErrorType, message: string): DecodeRefusal {
  return { ok: false, reason, errorType, message };
}

/** What {@link EventCodec.decodeEvent} makes of any record: the event as declared, and upcast. */
export type EventDecodeOutcome =
  | {
      ok: true;
      schemaId: number;
      eventType: string;
      eventVersion: number;
      /** The event in the version it declares, validated (JSON-safe: longs are safe integers). */
      event: Record<string, unknown>;
      /** The same event upcast to the newest version of its type. */
      latest: Record<string, unknown>;
    }
  | DecodeRefusal;

const validators = new Map<CatalogEntry, z.ZodType>();
/** The validator of one type and version: the business rules where there are any, else the structure. */
function eventValidator(entry: CatalogEntry): z.ZodType {
  let v = validators.get(entry);
  if (!v) {
    const rules = (INGRESS_VALIDATORS as Partial<Record<string, Record<number, z.ZodType>>>)[entry.eventType];
    v = rules?.[entry.version] ?? entry.schema;
    validators.set(entry, v);
  }
  return v;
}

/** Maps an older version onto the newest of its type; types with one version are returned as they are. */
function upcastEvent(eventType: string, event: Record<string, unknown>): Record<string, unknown> {
  if (eventType === 'order.placed') {
    return upcastOrderPlaced(event as unknown as Parameters<typeof upcastOrderPlaced>[0]);
  }
  if (eventType === 'order.confirmed') {
    return upcastOrderConfirmed(event as unknown as Parameters<typeof upcastOrderConfirmed>[0]);
  }
  return event;
}

export interface EventCodecOptions {
  /** Records larger than this are poison; protects memory from a runaway producer. */
  maxPayloadBytes: number;
}

export class EventCodec {
  private readonly writers = new Map<number, avro.Type | Error>();
  /** Writer schema id → catalog entry → how to read (schema ids are immutable, so never evicted). */
  private readonly readPlans = new Map<number, Map<CatalogEntry, ReadPlan>>();
  private readonly subjectIds = new Map<string, Promise<number>>();

  constructor(
    private readonly registry: RegistryClient,
    private readonly options: EventCodecOptions = { maxPayloadBytes: 256 * 1024 },
  ) {}

  /**
   * Frames the Avro body of `event` with the registry id of its schema file under `<topic>-value`.
   * The schema is looked up, never registered: provisioning registers every version in file order
   * with BACKWARD set first (src/provision), so a subject's order never depends on which producer
   * happened to encode first.
   */
  async encode<E extends { eventType: string; eventVersion: number }>(topic: string, event: E): Promise<Buffer> {
    const entry = catalogEntry(event.eventType, event.eventVersion);
    if (!entry) throw new Error(`no schema for ${event.eventType} v${event.eventVersion}`);
    const schemaId = await this.schemaId(topic, entry);
    return encodeFrame(schemaId, readerType(entry).toBuffer(event));
  }

  /**
   * The registry id of one schema file under `<topic>-value`, looked up once per codec. Throws
   * {@link SchemaNotProvisionedError} when the subject does not hold it.
   */
  schemaId(topic: string, entry: CatalogEntry): Promise<number> {
    const subject = valueSubject(topic);
    const key = `${subject}\u0000${entry.file}`;
    let id = this.subjectIds.get(key);
    if (!id) {
      id = this.registry.lookup(subject, entry.avsc).then((found) => {
        if (!found) {
          throw new SchemaNotProvisionedError(
            `subject ${subject} does not hold ${entry.file}: run \`npm run provision\``,
          );
        }
        return found.id;
      });
      // Only successes are cached: provisioning may run while this process waits.
      id.catch(() => this.subjectIds.delete(key));
      this.subjectIds.set(key, id);
    }
    return id;
  }

  /**
   * The ingress's view of one record value expected to hold `expected` events: {@link decodeEvent}
   * (the one decoding path of every consumer), upcast to the latest version.
   */
  async decode(payload: Buffer | null, expected: IngressEventType): Promise<DecodeOutcome> {
    const r = await this.decodeEvent(payload, expected);
    if (!r.ok) return r;
    const value: IngressEvent =
      expected === 'order.placed'
        ? { eventType: 'order.placed', sourceVersion: r.eventVersion, event: r.latest as OrderPlaced }
        : { eventType: 'order.cancelled', sourceVersion: r.eventVersion, event: r.latest as OrderCancelled };
    return { ok: true, schemaId: r.schemaId, value };
  }

  /**
   * Decodes, validates and upcasts one record value: the single path every consumer (ingress, event
   * store) takes, so two consumers can never disagree about the same bytes. The body is read with
   * the writer's schema (by id) resolved to the schema file of the version the record declares, then
   * checked by that version's validator (business rules where there are any); `latest` is the event
   * upcast to the newest version of its type. Returns a poison verdict for anything the record itself
   * gets wrong; throws {@link RegistryUnavailableError} when the registry cannot be asked, so the
   * caller retries the same record later. Pure apart from cached registry lookups.
   */
  async decodeEvent(payload: Buffer | null, expected?: string): Promise<EventDecodeOutcome> {
    if (payload && payload.length > this.options.maxPayloadBytes) {
      return fail(
        DecodeFailure.PayloadTooLarge,
        DecodeErrorType.SizeLimit,
        `${payload.length} bytes exceeds the ${this.options.maxPayloadBytes}-byte limit`,
      );
    }
    let schemaId: number;
    try {
      schemaId = frameSchemaId(payload);
    } catch (err) {
      const type = (err as { type?: string }).type;
      const reason =
        type === 'EmptyPayload' || type === 'TruncatedPayload' || type === 'WrongMagicByte'
          ? DecodeFailure[type]
          : DecodeFailure.UndecodableBody;
      return fail(reason, DecodeErrorType.WireFormat, (err as Error).message);
    }
    const body = payload as Buffer;
    // Cached after the first record of a schema id: no await (and no extra tick) per record.
    const writer = this.writers.get(schemaId) ?? (await this.writerType(schemaId));
    if (writer instanceof Error) {
      const reason =
        writer.name === 'UnknownSchemaId' ? DecodeFailure.UnknownSchemaId : DecodeFailure.UnparseableSchema;
      return fail(reason, DecodeErrorType.Registry, writer.message);
    }
    let raw: { eventType?: unknown; eventVersion?: unknown };
    try {
      raw = readBody(writer, body) as typeof raw;
    } catch (err) {
      return fail(DecodeFailure.UndecodableBody, DecodeErrorType.Avro, (err as Error).message);
    }
    const { eventType, eventVersion: version } = raw;
    if (expected !== undefined && eventType !== expected) {
      return fail(
        DecodeFailure.WrongEventType,
        DecodeErrorType.Validation,
        `expected ${expected}, got ${JSON.stringify(eventType)}`,
      );
    }
    const entry =
      typeof eventType === 'string' && typeof version === 'number' ? catalogEntry(eventType, version) : undefined;
    if (!entry || typeof version !== 'number') {
      return fail(
        DecodeFailure.UnknownEventVersion,
        DecodeErrorType.Validation,
        `${JSON.stringify(eventType)} version ${JSON.stringify(version)} is not one this build knows`,
      );
    }
    // Same schema as the file of the declared version (the usual case): the writer's view is the reader's.
    let decoded: unknown = raw;
    const plan = this.readPlan(schemaId, entry, writer);
    if (!plan.same) {
      const { resolver } = plan;
      if (resolver instanceof Error) {
        return fail(DecodeFailure.IncompatibleSchema, DecodeErrorType.Avro, resolver.message);
      }
      try {
        decoded = readBody(readerType(entry), body, resolver);
      } catch (err) {
        return fail(DecodeFailure.UndecodableBody, DecodeErrorType.Avro, (err as Error).message);
      }
    }
    const parsed = eventValidator(entry).safeParse(decoded);
    if (!parsed.success) {
      return fail(DecodeFailure.InvalidContent, DecodeErrorType.Validation, describeIssues(parsed.error));
    }
    const event = parsed.data as Record<string, unknown>;
    return {
      ok: true,
      schemaId,
      eventType: entry.eventType,
      eventVersion: version,
      event,
      latest: upcastEvent(entry.eventType, event),
    };
  }

  /** The writer's schema by id; an Error value for ids that can never decode (cached, ids are immutable). */
  private async writerType(id: number): Promise<avro.Type | Error> {
    const cached = this.writers.get(id);
    if (cached) return cached;
    let text: string;
    try {
      text = await this.registry.schemaById(id);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 404) {
        // Not cached: the schema may be registered later, and a replay should then succeed.
        const e = new Error(`schema id ${id} is not in the registry`);
        e.name = 'UnknownSchemaId';
        return e;
      }
      // 5xx, timeouts, refused connections, and also 401/403: a misconfigured registry must stall
      // the ingress rather than dead-letter every record.
      throw new RegistryUnavailableError(`registry lookup of schema ${id} failed: ${(err as Error).message}`);
    }
    let result: avro.Type | Error;
    try {
      result = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
    } catch (err) {
      result = new Error(`schema ${id} is not a usable Avro schema: ${(err as Error).message}`);
    }
    this.writers.set(id, result);
    return result;
  }

  /**
   * How records of writer schema `id` are read as `entry`, worked out once per pair: comparing
   * schemas (a fingerprint) and building a resolver cost more than decoding a record.
   */
  private readPlan(id: number, entry: CatalogEntry, writer: avro.Type): ReadPlan {
    let byEntry = this.readPlans.get(id);
    if (!byEntry) this.readPlans.set(id, (byEntry = new Map<CatalogEntry, ReadPlan>()));
    let plan = byEntry.get(entry);
    if (!plan) {
      const reader = readerType(entry);
      if (writer.equals(reader)) plan = { same: true };
      else {
        let resolver: avro.Resolver | Error;
        try {
          resolver = reader.createResolver(writer);
        } catch (err) {
          resolver = new Error(`schema ${id} cannot be read as ${entry.file}: ${(err as Error).message}`);
        }
        plan = { same: false, resolver };
      }
      byEntry.set(entry, plan);
    }
    return plan;
  }
}
