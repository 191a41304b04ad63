import { z } from 'zod';

import { outboxEventId, uuidV5 } from '../../src/outbox/event-id';

describe('outbox event ids', () => {
  it('uuidV5 matches the RFC 9562 reference (DNS namespace, www.example.com)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('is the same for every attempt of a step and differs by step and by event type', () => {
    const key = 'order-ord-1/confirmOrder';
    const id = outboxEventId(key, 'order.confirmed');
    expect(outboxEventId(key, 'order.confirmed')).toBe(id);
    expect(outboxEventId('order-ord-2/confirmOrder', 'order.confirmed')).not.toBe(id);
    expect(outboxEventId(key, 'order.failed')).not.toBe(id);
    // The schemas' eventId is an Avro uuid, validated as such by the generated zod schemas.
    expect(z.uuid().safeParse(id).success).toBe(true);
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => uuidV5('x', 'not-a-uuid')).toThrow('not a UUID');
  });
});
