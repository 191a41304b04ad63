/**
 * Avro events in the Confluent wire format, with schemas from the registry. Producers encode with
 * the schema file of the event's version (registered under `<topic>-value`); the ingress decodes
 * with the writer's schema fetched by id, resolves it to the reader schema of the event's version,
 * validates, and upcasts to the latest version.
 */
import avro from 'avsc';

import type { RegistryClient } from '../kafka/registry-client';
import { decodeFrame, encodeFrame } from '../kafka/wire-format';
import { EVENT_CATALOG } from './generated/event-schemas';
import type { IngressEvent, IngressEventType } from './rules';
import { INGRESS_VALIDATORS, describeIssues, upcastOrderPlaced } from './rules';
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

export type DecodeOutcome =
  | { ok: true; schemaId: number; value: IngressEvent }
  | { ok: false; reason: DecodeFailure; errorType: DecodeErrorType; message: string };

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

/** The catalog entry of an event type and version, if this build knows it. */
export function catalogEntry(eventType: string, version: number): CatalogEntry | undefined {
  return EVENT_CATALOG.find((e) => e.eventType === eventType && e.version === version);
}

function fail(reason: DecodeFailure, errorType: DecodeErrorType, message: string): DecodeOutcome {
  return { ok: false, reason, errorType, message };
}

export interface EventCodecOptions {
  /** Records larger than this are poison; protects memory from a runaway producer. */
  maxPayloadBytes: number;
}

export class EventCodec {
  private readonly writers = new Map<number, avro.Type | Error>();
  private readonly resolvers = new Map<string, avro.Resolver | Error>();
  private readonly subjectIds = new Map<string, Promise<number>>();

  constructor(
    private readonly registry: RegistryClient,
    private readonly options: EventCodecOptions = { maxPayloadBytes: 256 * 1024 },
  ) {}

  /**
   * Registers the schema of `event`'s type and version under the topic's value subject (once per
   * codec; the registry answers an identical schema with its existing id) and frames the Avro body.
   */
  async encode<E extends { eventType: string; eventVersion: number }>(topic: string, event: E): Promise<Buffer> {
    const entry = catalogEntry(event.eventType, event.eventVersion);
    if (!entry) throw new Error(`no schema for ${event.eventType} v${event.eventVersion}`);
    const schemaId = await this.schemaId(topic, entry);
    return encodeFrame(schemaId, readerType(entry).toBuffer(event));
  }

  /**
   * The registry id of one schema file under `<topic>-value`, registering it on first use. The
   * subject gets BACKWARD compatibility first: the registry's global default may be NONE (it is in
   * Apicurio), and a subject without the rule would accept a change that breaks the ingress.
   */
  schemaId(topic: string, entry: CatalogEntry): Promise<number> {
    const subject = valueSubject(topic);
    const key = `${subject}\u0000${entry.file}`;
    let id = this.subjectIds.get(key);
    if (!id) {
      id = this.registry.setCompatibility(subject, 'BACKWARD').then(() => this.registry.register(subject, entry.avsc));
      id.catch(() => this.subjectIds.delete(key));
      this.subjectIds.set(key, id);
    }
    return id;
  }

  /**
   * Decodes one record value expected to hold `expected` events. Returns a poison verdict for
   * anything the record itself gets wrong; throws {@link RegistryUnavailableError} when the
   * registry cannot be asked, so the caller retries the same record later. Pure apart from the
   * cached registry lookups, so calling it twice on the same bytes gives the same answer.
   */
  async decode(payload: Buffer | null, expected: IngressEventType): Promise<DecodeOutcome> {
    if (payload && payload.length > this.options.maxPayloadBytes) {
      return fail(
        DecodeFailure.PayloadTooLarge,
        DecodeErrorType.SizeLimit,
        `${payload.length} bytes exceeds the ${this.options.maxPayloadBytes}-byte limit`,
      );
    }
    let frame: { schemaId: number; body: Buffer };
    try {
      frame = decodeFrame(payload);
    } catch (err) {
      const type = (err as { type?: string }).type;
      const reason =
        type === 'EmptyPayload' || type === 'TruncatedPayload' || type === 'WrongMagicByte'
          ? DecodeFailure[type]
          : DecodeFailure.UndecodableBody;
      return fail(reason, DecodeErrorType.WireFormat, (err as Error).message);
    }
    const writer = await this.writerType(frame.schemaId);
    if (writer instanceof Error) {
      const reason =
        writer.name === 'UnknownSchemaId' ? DecodeFailure.UnknownSchemaId : DecodeFailure.UnparseableSchema;
      return fail(reason, DecodeErrorType.Registry, writer.message);
    }
    let raw: { eventType?: unknown; eventVersion?: unknown };
    try {
      raw = writer.fromBuffer(frame.body) as typeof raw;
    } catch (err) {
      return fail(DecodeFailure.UndecodableBody, DecodeErrorType.Avro, (err as Error).message);
    }
    if (raw.eventType !== expected) {
      return fail(
        DecodeFailure.WrongEventType,
        DecodeErrorType.Validation,
        `expected ${expected}, got ${JSON.stringify(raw.eventType)}`,
      );
    }
    const version = raw.eventVersion;
    const entry = typeof version === 'number' ? catalogEntry(expected, version) : undefined;
    const validators = INGRESS_VALIDATORS[expected] as Record<number, (typeof INGRESS_VALIDATORS)[typeof expected][1]>;
    const validator = typeof version === 'number' ? validators[version] : undefined;
    if (!entry || !validator) {
      return fail(
        DecodeFailure.UnknownEventVersion,
        DecodeErrorType.Validation,
        `${expected} version ${JSON.stringify(version)} is not one this ingress knows`,
      );
    }
    // Same schema as ours (the usual case): the writer's decoding is already the reader's view.
    let decoded: unknown = raw;
    const reader = readerType(entry);
    if (!writer.equals(reader)) {
      const resolver = this.resolver(frame.schemaId, entry, writer);
      if (resolver instanceof Error) {
        return fail(DecodeFailure.IncompatibleSchema, DecodeErrorType.Avro, resolver.message);
      }
      try {
        decoded = reader.fromBuffer(frame.body, resolver);
      } catch (err) {
        return fail(DecodeFailure.UndecodableBody, DecodeErrorType.Avro, (err as Error).message);
      }
    }
    const parsed = validator.safeParse(decoded);
    if (!parsed.success) {
      return fail(DecodeFailure.InvalidContent, DecodeErrorType.Validation, describeIssues(parsed.error));
    }
    const value: IngressEvent =
      expected === 'order.placed'
        ? {
            eventType: 'order.placed',
            sourceVersion: version as number,
            event: upcastOrderPlaced(parsed.data as Parameters<typeof upcastOrderPlaced>[0]),
          }
        : {
            eventType: 'order.cancelled',
            sourceVersion: version as number,
            event: parsed.data as Extract<IngressEvent, { eventType: 'order.cancelled' }>['event'],
          };
    return { ok: true, schemaId: frame.schemaId, value };
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

  private resolver(id: number, entry: CatalogEntry, writer: avro.Type): avro.Resolver | Error {
    const key = `${id}\u0000${entry.file}`;
    let r: avro.Resolver | Error | undefined = this.resolvers.get(key);
    if (!r) {
      try {
        r = readerType(entry).createResolver(writer);
      } catch (err) {
        r = new Error(`schema ${id} cannot be read as ${entry.file}: ${(err as Error).message}`);
      }
      this.resolvers.set(key, r);
    }
    return r;
  }
}
