/**
 * Deterministic event ids for the events services append to their outbox. An activity may run more
 * than once (a retry after a crash before its transaction committed); deriving the id from the
 * step's idempotency key means every attempt builds the same eventId, so the outbox (`ON CONFLICT
 * (id)`), Kafka consumers and the event store all see one event, never one per attempt.
 */
import { createHash } from 'node:crypto';

/**
 * Namespace of our name-based UUIDs (RFC 9562 v5). Any fixed UUID would do; it only has to stay
 * the same forever, or a retried step would get a new id.
 */
export const OUTBOX_EVENT_ID_NAMESPACE = '5b1c3d0e-7f6a-4e52-9a3b-2c8d4f1e6a90';

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/** RFC 9562 version 5 UUID of `name` in `namespace` (SHA-1, name-based). */
export function uuidV5(name: string, namespace: string = OUTBOX_EVENT_ID_NAMESPACE): string {
  const hash = createHash('sha1').update(uuidBytes(namespace)).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The eventId of the `eventType` event written by the step whose idempotency key is
 * `idempotencyKey`: the same for every attempt of that step, different for every other step or type.
 */
export function outboxEventId(idempotencyKey: string, eventType: string): string {
  return uuidV5(`${eventType}\u0000${idempotencyKey}`);
}
