/**
 * Reads any domain event off a topic for the event store. The ingress codec (src/events/codec.ts)
 * decodes only the events the ingress consumes and upcasts them; the store must keep every type
 * exactly as written, so it decodes with the writer's schema by id (same registry client and wire
 * format) and checks the result against the generated validator of that type and version.
 */
import avro from 'avsc';

import { catalogEntry } from '../events/codec';
import type { RegistryClient } from '../kafka/registry-client';
import { decodeFrame } from '../kafka/wire-format';

export interface DecodedDomainEvent {
  eventId: string;
  eventType: string;
  eventVersion: number;
  occurredAt: number;
  orderId: string;
  schemaId: number;
  /** The whole event as written (JSON-safe: longs are safe integers). */
  payload: Record<string, unknown>;
}

/** Failure type strings of {@link DomainEventDecoder.decode}. */
export const DomainDecodeFailure = {
  NotFramed: 'NotFramed',
  UnknownSchema: 'UnknownSchema',
  Undecodable: 'Undecodable',
  UnknownEvent: 'UnknownEvent',
  Invalid: 'Invalid',
} as const;
export type DomainDecodeFailure = (typeof DomainDecodeFailure)[keyof typeof DomainDecodeFailure];

export class DomainDecodeError extends Error {
  override name = 'DomainDecodeError';
  constructor(
    readonly type: DomainDecodeFailure,
    message: string,
  ) {
    super(message);
  }
}

export class DomainEventDecoder {
  private readonly writers = new Map<number, Promise<avro.Type>>();

  constructor(private readonly registry: RegistryClient) {}

  /**
   * Decodes one Confluent-framed value. Throws DomainDecodeError for a record that can never decode;
   * a registry outage surfaces as the registry client's error (transient: retry the record).
   */
  async decode(value: Buffer | null): Promise<DecodedDomainEvent> {
    let frame: { schemaId: number; body: Buffer };
    try {
      frame = decodeFrame(value);
    } catch (err) {
      throw new DomainDecodeError(DomainDecodeFailure.NotFramed, (err as Error).message);
    }
    const writer = await this.writer(frame.schemaId);
    let raw: Record<string, unknown>;
    try {
      raw = writer.fromBuffer(frame.body) as Record<string, unknown>;
    } catch (err) {
      throw new DomainDecodeError(DomainDecodeFailure.Undecodable, (err as Error).message);
    }
    const { eventType, eventVersion } = raw;
    const entry =
      typeof eventType === 'string' && typeof eventVersion === 'number'
        ? catalogEntry(eventType, eventVersion)
        : undefined;
    if (!entry) {
      throw new DomainDecodeError(
        DomainDecodeFailure.UnknownEvent,
        `no schema file for ${String(eventType)} v${String(eventVersion)}`,
      );
    }
    const parsed = entry.schema.safeParse(raw);
    if (!parsed.success) throw new DomainDecodeError(DomainDecodeFailure.Invalid, parsed.error.message);
    const e = parsed.data as unknown as Omit<DecodedDomainEvent, 'schemaId' | 'payload'>;
    return {
      eventId: e.eventId,
      eventType: e.eventType,
      eventVersion: e.eventVersion,
      occurredAt: e.occurredAt,
      orderId: e.orderId,
      schemaId: frame.schemaId,
      payload: parsed.data,
    };
  }

  private writer(id: number): Promise<avro.Type> {
    let w = this.writers.get(id);
    if (!w) {
      w = this.registry.schemaById(id).then(
        (text) => avro.Type.forSchema(JSON.parse(text) as avro.Schema),
        (err: unknown) => {
          if ((err as { status?: number }).status === 404) {
            throw new DomainDecodeError(DomainDecodeFailure.UnknownSchema, `schema id ${id} is not in the registry`);
          }
          throw err;
        },
      );
      // Only successes are cached: an outage (or a schema registered later) must not stick.
      w.catch(() => this.writers.delete(id));
      this.writers.set(id, w);
    }
    return w;
  }
}
