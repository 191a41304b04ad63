/**
 * Events as values. Each event type has one factory, declared next to the service that emits it
 * (`src/services/<name>/<name>-events.ts`) from its generated schema; the factory fills the envelope
 * (eventId, eventType, eventVersion, occurredAt) and says where the event goes (the emitting
 * service's outbox, its topic, the aggregate), so a service states a fact in one line inside the
 * transaction of its change:
 *
 *     await outbox.emit(tx, stockReserved({ idempotencyKey, orderId, lines }));
 *
 * The caller supplies only the event's own facts; TypeScript refuses a missing, extra or mistyped
 * one, and the generated zod schema refuses it at run time (for values that escaped the compiler),
 * before anything is written.
 */
import { randomUUID } from 'node:crypto';

import type { z } from 'zod';

import { outboxEventId } from '../outbox/event-id';
import type { OutboxService } from '../outbox/outbox-constants';
import { ORDER_AGGREGATE_TYPE } from '../outbox/outbox-constants';
import { EVENT_CATALOG } from './generated/event-schemas';
import { describeIssues } from './rules';

/** Fields every domain event has (see schemas/*.avsc). */
export interface DomainEvent {
  eventId: string;
  eventType: string;
  eventVersion: number;
  occurredAt: number;
  orderId: string;
}

/** A built event and where it goes: what {@link OutboxWriter.emit} appends, or a producer sends. */
export interface EventMessage<E extends DomainEvent = DomainEvent> {
  /** The service whose outbox (`<service>.outbox`) holds the event. */
  readonly service: OutboxService;
  /** Canonical topic (a TOPICS value); the outbox writer adds its scope's prefix. */
  readonly topic: string;
  /** Kind of aggregate, the outbox `aggregatetype` ('order' for every saga event). */
  readonly aggregateType: string;
  /** The aggregate's id: the event's orderId, also its Kafka key. */
  readonly aggregateId: string;
  readonly event: E;
}

/** A factory was handed facts its event's schema does not accept. Nothing was built or written. */
export class InvalidEventError extends Error {
  override name = 'InvalidEventError';
  readonly type = 'InvalidEvent';
}

type CatalogEntry = (typeof EVENT_CATALOG)[number];
/** The generated zod schema of one event type and version. */
export type EventSchema = CatalogEntry['schema'];

/** The envelope: fields every factory fills itself. */
export type EnvelopeField = 'eventId' | 'eventType' | 'eventVersion' | 'occurredAt';

/** An event's own facts: everything its schema holds except the envelope. */
export type EventFacts<S extends EventSchema> = Omit<z.infer<S>, EnvelopeField>;

/** When the fact happened; now unless the caller knows better (e.g. a decision's workflow time). */
interface OccurredAt {
  occurredAt?: number;
}

/**
 * Input of an event written by a saga step: the step's idempotency key names the event, so every
 * attempt of the step builds the same eventId (see src/outbox/event-id.ts).
 */
export type StepEventInput<S extends EventSchema> = EventFacts<S> & OccurredAt & { idempotencyKey: string };

/**
 * Input of an event that starts something rather than records a step (an order placed or
 * cancelled): a fresh random id, or the one given (a producer re-sending the same event).
 */
export type FreshEventInput<S extends EventSchema> = EventFacts<S> & OccurredAt & { eventId?: string };

/** Builds the event message of one event type and version, and says which type that is. */
export interface EventFactory<S extends EventSchema, I> {
  (input: I): EventMessage<z.infer<S>>;
  readonly eventType: z.infer<S>['eventType'];
  readonly eventVersion: z.infer<S>['eventVersion'];
  /** Where the eventId comes from: the writing step's idempotency key, or fresh (see the two builders). */
  readonly ids: 'step' | 'fresh';
  readonly service: OutboxService;
  readonly topic: string;
  readonly aggregateType: string;
  readonly schema: S;
}

/** Where a type's events go. */
export interface EventRoute {
  /** The emitting service: its outbox holds the event. */
  service: OutboxService;
  /** Canonical topic, a TOPICS value. */
  topic: string;
}

function entryOf(schema: EventSchema): CatalogEntry {
  const entry = EVENT_CATALOG.find((e) => e.schema === schema);
  // Only a generated schema has a registered Avro twin; anything else could not be encoded.
  if (!entry) throw new Error('an event factory needs a schema from src/events/generated/event-schemas.ts');
  return entry;
}

function factory<S extends EventSchema, I extends OccurredAt>(
  schema: S,
  route: EventRoute,
  ids: 'step' | 'fresh',
  envelope: (input: I) => { eventId: string; facts: object },
): EventFactory<S, I> {
  const entry = entryOf(schema);
  const build = (input: I): EventMessage<z.infer<S>> => {
    const { eventId, facts } = envelope(input);
    const parsed = schema.safeParse({
      ...facts,
      eventId,
      eventType: entry.eventType,
      eventVersion: entry.version,
      occurredAt: input.occurredAt ?? Date.now(),
    });
    if (!parsed.success) {
      throw new InvalidEventError(`${entry.eventType} v${entry.version}: ${describeIssues(parsed.error)}`);
    }
    const event = parsed.data as z.infer<S>;
    return {
      service: route.service,
      topic: route.topic,
      aggregateType: ORDER_AGGREGATE_TYPE,
      aggregateId: event.orderId,
      event,
    };
  };
  return Object.assign(build, {
    eventType: entry.eventType,
    eventVersion: entry.version,
    ids,
    service: route.service,
    topic: route.topic,
    aggregateType: ORDER_AGGREGATE_TYPE,
    schema,
  });
}

/**
 * The factory of an event a saga step writes (its eventId derives from the step's idempotency key
 * and the canonical topic, exactly as {@link outboxEventId} always has).
 */
export function stepEvent<S extends EventSchema>(schema: S, route: EventRoute): EventFactory<S, StepEventInput<S>> {
  return factory(schema, route, 'step', (input: StepEventInput<S>) => {
    const { idempotencyKey, occurredAt: _occurredAt, ...facts } = input;
    return { eventId: outboxEventId(idempotencyKey, route.topic), facts };
  });
}

/** The factory of an event with a fresh random eventId unless one is given. */
export function freshEvent<S extends EventSchema>(schema: S, route: EventRoute): EventFactory<S, FreshEventInput<S>> {
  return factory(schema, route, 'fresh', (input: FreshEventInput<S>) => {
    const { eventId, occurredAt: _occurredAt, ...facts } = input;
    return { eventId: eventId ?? randomUUID(), facts };
  });
}
