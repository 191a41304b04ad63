/**
 * Reads any domain event off a topic for the event store, through the same decode → validate →
 * upcast function as the ingress ({@link EventCodec.decodeEvent}), so the two consumers can never
 * disagree about the same bytes. The store keeps each event in the version it declares.
 */
import type { DecodeFailure } from '../events/codec';
import { EventCodec } from '../events/codec';
import type { RegistryClient } from '../kafka/registry-client';

export interface DecodedDomainEvent {
  eventId: string;
  eventType: string;
  eventVersion: number;
  occurredAt: number;
  orderId: string;
  schemaId: number;
  /** The whole event in its declared version (JSON-safe: longs are safe integers). */
  payload: Record<string, unknown>;
}

/** A record that can never decode; `type` is the shared codec's failure string (e.g. `InvalidContent`). */
export class DomainDecodeError extends Error {
  override name = 'DomainDecodeError';
  constructor(
    readonly type: DecodeFailure,
    message: string,
  ) {
    super(message);
  }
}

export class DomainEventDecoder {
  private readonly codec: EventCodec;

  constructor(registry: RegistryClient) {
    this.codec = new EventCodec(registry);
  }

  /**
   * Decodes one Confluent-framed value. Throws DomainDecodeError for a record that can never decode;
   * a registry outage surfaces as the codec's RegistryUnavailableError (transient: retry the record).
   */
  async decode(value: Buffer | null): Promise<DecodedDomainEvent> {
    const r = await this.codec.decodeEvent(value);
    if (!r.ok) throw new DomainDecodeError(r.reason, r.message);
    const e = r.event as { eventId: string; occurredAt: number; orderId: string };
    return {
      eventId: e.eventId,
      eventType: r.eventType,
      eventVersion: r.eventVersion,
      occurredAt: e.occurredAt,
      orderId: e.orderId,
      schemaId: r.schemaId,
      payload: r.event,
    };
  }
}
