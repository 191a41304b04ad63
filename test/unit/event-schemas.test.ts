import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import avro from 'avsc';

import { DomainEventDecoder } from '../../src/event-store/domain-event-decoder';
import type { DecodeOutcome } from '../../src/events/codec';
import { DecodeFailure, EventCodec } from '../../src/events/codec';
import type { OrderPlacedV1 } from '../../src/events/generated/event-schemas';
import { orderCancelledV1Avsc, orderPlacedV1Avsc, orderPlacedV2Avsc } from '../../src/events/generated/event-schemas';
import { INGRESS_VALIDATORS, upcastOrderPlaced } from '../../src/events/rules';
import type { RegistryClient } from '../../src/kafka/registry-client';
import { encodeFrame } from '../../src/kafka/wire-format';

const example = (name: string): OrderPlacedV1 =>
  (
    JSON.parse(
      readFileSync(path.join(__dirname, '..', '..', 'schemas', 'examples', `${name}.json`), 'utf8'),
    ) as OrderPlacedV1[]
  )[0]!;

/** An in-memory stand-in for the registry: ids 1.. in registration order. */
function fakeRegistry(opts: { down?: boolean } = {}) {
  const schemas: string[] = [];
  const registry = {
    setCompatibility: () => Promise.resolve(),
    register: (_subject: string, schema: object | string) => {
      const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
      const known = schemas.indexOf(text);
      if (known >= 0) return Promise.resolve(known + 1);
      schemas.push(text);
      return Promise.resolve(schemas.length);
    },
    // Every schema counts as provisioned: a lookup answers with the schema's id.
    lookup(subject: string, schema: object | string) {
      return this.register(subject, schema).then((id) => ({ id, version: id }));
    },
    schemaById: (id: number) => {
      if (opts.down) return Promise.reject(Object.assign(new Error('ECONNREFUSED'), { status: undefined }));
      const text = schemas[id - 1];
      return text ? Promise.resolve(text) : Promise.reject(Object.assign(new Error('not found'), { status: 404 }));
    },
  };
  return { registry: registry as unknown as RegistryClient, schemas };
}

const failure = (o: DecodeOutcome) => (o.ok ? 'ok' : o.reason);

describe('generated event types', () => {
  it('are up to date with schemas/*.avsc', () => {
    // In a child process: prettier's formatter needs ESM dynamic import, which Jest's CJS sandbox lacks.
    const root = path.join(__dirname, '..', '..');
    const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/events/codegen.ts', '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
  });
});

describe('order.placed business rules', () => {
  const v1 = INGRESS_VALIDATORS['order.placed'][1];
  const good = example('order-placed-v1');
  const bad = (patch: Partial<OrderPlacedV1>) => v1.safeParse({ ...good, ...patch });

  it('accept a well-formed order', () => {
    expect(v1.safeParse(good).success).toBe(true);
  });

  it.each([
    ['no items', { items: [], totalMinor: 0 }, 'items'],
    ['zero quantity', { items: [{ sku: 'A', quantity: 0, unitPriceMinor: 100 }], totalMinor: 100 }, 'items.0.quantity'],
    [
      'negative quantity',
      { items: [{ sku: 'A', quantity: -1, unitPriceMinor: 100 }], totalMinor: 100 },
      'items.0.quantity',
    ],
    ['total not the sum of lines', { totalMinor: 3398 }, 'totalMinor'],
    ['unknown currency', { currency: 'XXX' }, 'currency'],
    ['empty order id', { orderId: ' ' }, 'orderId'],
    ['eventId not a uuid', { eventId: 'abc' }, 'eventId'],
    ['wrong eventType', { eventType: 'order.cancelled' as 'order.placed' }, 'eventType'],
  ] as const)('refuse %s', (_name, patch, pathText) => {
    const r = bad(patch as Partial<OrderPlacedV1>);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toContain(pathText);
  });

  it('upcast v1 to v2 with isLoyaltyMember=false and leave v2 alone', () => {
    expect(upcastOrderPlaced(good)).toEqual({ ...good, eventVersion: 2, isLoyaltyMember: false });
    const v2 = { ...example('order-placed-v2'), isLoyaltyMember: true, eventVersion: 2 as const };
    expect(upcastOrderPlaced(v2)).toBe(v2);
  });
});

describe('EventCodec.decode', () => {
  const v1Type = avro.Type.forSchema(orderPlacedV1Avsc as unknown as avro.Schema);
  const good = example('order-placed-v1');

  it('decodes, validates and upcasts a v1 event written with a registered schema', async () => {
    const { registry } = fakeRegistry();
    const codec = new EventCodec(registry);
    const out = await codec.decode(await codec.encode('t', good), 'order.placed');
    expect(out).toMatchObject({ ok: true, value: { eventType: 'order.placed', sourceVersion: 1 } });
    expect(out.ok && out.value.event).toEqual({ ...good, eventVersion: 2, isLoyaltyMember: false });
  });

  it('resolves a v2-written event and keeps its loyalty flag', async () => {
    const { registry } = fakeRegistry();
    const codec = new EventCodec(registry);
    const v2 = { ...example('order-placed-v2') };
    const out = await codec.decode(await codec.encode('t', v2), 'order.placed');
    expect(out.ok && out.value.event).toEqual(v2);
  });

  it('names every kind of poison', async () => {
    const { registry } = fakeRegistry();
    const codec = new EventCodec(registry, { maxPayloadBytes: 1024 });
    const goodFrame = await codec.encode('t', good);
    const cancelId = await registry.register('c', orderCancelledV1Avsc);
    const v1Id = await registry.register('t', orderPlacedV1Avsc);
    const unparseable = await registry.register('x', '{"type":"nonsense"}');
    const frame = (o: unknown, id = v1Id) => encodeFrame(id, v1Type.toBuffer(o));
    const cases: [string, Buffer | null][] = [
      [DecodeFailure.EmptyPayload, null],
      [DecodeFailure.TruncatedPayload, Buffer.from([0, 0])],
      [DecodeFailure.WrongMagicByte, Buffer.from('{"orderId":"1"}')],
      [DecodeFailure.UnknownSchemaId, encodeFrame(9999, Buffer.from([1, 2, 3]))],
      [DecodeFailure.UnparseableSchema, encodeFrame(unparseable, Buffer.from([1]))],
      [DecodeFailure.UndecodableBody, encodeFrame(v1Id, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))],
      [DecodeFailure.UndecodableBody, Buffer.concat([goodFrame, Buffer.from([7])])],
      [DecodeFailure.PayloadTooLarge, Buffer.concat([goodFrame, Buffer.alloc(2000)])],
      [DecodeFailure.UnknownEventVersion, frame({ ...good, eventVersion: 7 })],
      [DecodeFailure.InvalidContent, frame({ ...good, totalMinor: 1 })],
      [
        DecodeFailure.WrongEventType,
        encodeFrame(
          cancelId,
          avro.Type.forSchema(orderCancelledV1Avsc as unknown as avro.Schema).toBuffer({
            ...good,
            eventType: 'order.cancelled',
            reason: 'x',
          }),
        ),
      ],
    ];
    for (const [reason, payload] of cases) {
      expect([reason, failure(await codec.decode(payload, 'order.placed'))]).toEqual([reason, reason]);
    }
  });

  it('refuses a writer schema it cannot resolve to the reader schema', async () => {
    const { registry } = fakeRegistry();
    const codec = new EventCodec(registry);
    const retyped = {
      ...orderPlacedV2Avsc,
      fields: orderPlacedV2Avsc.fields.map((f) => (f.name === 'totalMinor' ? { ...f, type: 'string' } : f)),
    };
    const id = await registry.register('t', retyped);
    const body = avro.Type.forSchema(retyped as unknown as avro.Schema).toBuffer({
      ...example('order-placed-v2'),
      totalMinor: '3399',
    });
    expect(failure(await codec.decode(encodeFrame(id, body), 'order.placed'))).toBe(DecodeFailure.IncompatibleSchema);
  });

  it('reads every record of a resolved writer schema on its own, and still refuses a bad one after good ones', async () => {
    // A compatible writer that differs from the reader (an extra field): read through a resolver,
    // worked out once per schema id and then reused for every record.
    const { registry } = fakeRegistry();
    const codec = new EventCodec(registry);
    const extended = {
      ...orderPlacedV2Avsc,
      fields: [...orderPlacedV2Avsc.fields, { name: 'channel', type: 'string', default: 'web' }],
    };
    const id = await registry.register('t', extended);
    const writer = avro.Type.forSchema(extended as unknown as avro.Schema);
    const base = example('order-placed-v2');
    const orders = ['o-1', 'o-2', 'o-3'].map((orderId) => ({ ...base, orderId, channel: 'app' }));
    const frames = orders.map((o) => encodeFrame(id, writer.toBuffer(o)));
    for (const [i, f] of frames.entries()) {
      const out = await codec.decode(f, 'order.placed');
      expect(out.ok && out.value.event.orderId).toBe(orders[i]!.orderId);
      expect(out.ok && 'channel' in out.value.event).toBe(false);
    }
    const good = frames[0]!;
    expect(failure(await codec.decode(good.subarray(0, good.length - 2), 'order.placed'))).toBe(
      DecodeFailure.UndecodableBody,
    );
    expect(failure(await codec.decode(Buffer.concat([good, Buffer.from([0])]), 'order.placed'))).toBe(
      DecodeFailure.UndecodableBody,
    );
    expect(failure(await codec.decode(good, 'order.placed'))).toBe('ok');
  });

  it('throws a transient error when the registry is down instead of calling the record poison', async () => {
    const up = fakeRegistry();
    const framed = await new EventCodec(up.registry).encode('t', good);
    const down = fakeRegistry({ down: true });
    await expect(new EventCodec(down.registry).decode(framed, 'order.placed')).rejects.toMatchObject({
      type: 'RegistryUnavailable',
    });
  });
});

describe('one decoding path for every consumer', () => {
  const v1Type = avro.Type.forSchema(orderPlacedV1Avsc as unknown as avro.Schema);
  const good = example('order-placed-v1');

  /** The ingress's verdict and the event store's verdict on the same bytes. */
  async function verdicts(codec: EventCodec, store: DomainEventDecoder, bytes: Buffer) {
    const ingress = await codec.decode(bytes, 'order.placed');
    const stored = await store.decode(bytes).then(
      (e) => ({ ok: true as const, payload: e.payload }),
      (err: { type: string }) => ({ ok: false as const, reason: err.type }),
    );
    return { ingress, stored };
  }

  it('gives the ingress and the event store the same verdict on a v1-shaped record that claims version 2', async () => {
    // The defect's bytes: a use.latest.version producer whose "latest" was the v1 schema writes a
    // v2 event with it, so isLoyaltyMember never reaches the wire.
    const { registry } = fakeRegistry();
    const v1Id = await registry.register('order.placed-value', orderPlacedV1Avsc);
    const bytes = encodeFrame(v1Id, v1Type.toBuffer({ ...good, eventVersion: 2 }));
    const codec = new EventCodec(registry);
    const { ingress, stored } = await verdicts(codec, new DomainEventDecoder(registry), bytes);
    expect(ingress.ok).toBe(true);
    expect(stored.ok).toBe(true);
    // Both read it as v2 with the reader's default for the missing field: the same event.
    expect(ingress.ok && ingress.value.event).toEqual({ ...good, eventVersion: 2, isLoyaltyMember: false });
    expect(stored.ok && stored.payload).toEqual({ ...good, eventVersion: 2, isLoyaltyMember: false });
  });

  it('refuses the same poison for the same reason in both consumers (business rules included)', async () => {
    const { registry } = fakeRegistry();
    const v1Id = await registry.register('order.placed-value', orderPlacedV1Avsc);
    const codec = new EventCodec(registry);
    const store = new DomainEventDecoder(registry);
    for (const bytes of [
      encodeFrame(v1Id, v1Type.toBuffer({ ...good, totalMinor: 1 })),
      encodeFrame(v1Id, v1Type.toBuffer({ ...good, eventVersion: 7 })),
      Buffer.from('not avro'),
    ]) {
      const { ingress, stored } = await verdicts(codec, store, bytes);
      expect(ingress.ok).toBe(false);
      expect(stored).toEqual({ ok: false, reason: !ingress.ok && ingress.reason });
    }
  });

  it('decodes every type for the event store, in the version it declares, upcast alongside', async () => {
    const { registry } = fakeRegistry();
    const codec = new EventCodec(registry);
    const confirmed = JSON.parse(
      readFileSync(path.join(__dirname, '..', '..', 'schemas', 'examples', 'order-confirmed-v1.json'), 'utf8'),
    ) as { eventType: string; eventVersion: number }[];
    const out = await codec.decodeEvent(await codec.encode('order.confirmed', confirmed[0]!));
    expect(out).toMatchObject({ ok: true, eventType: 'order.confirmed', eventVersion: 1, event: confirmed[0] });
    const placed = await codec.decodeEvent(await codec.encode('order.placed', good));
    expect(placed).toMatchObject({ ok: true, eventVersion: 1, event: good });
    expect(placed.ok && placed.latest).toEqual({ ...good, eventVersion: 2, isLoyaltyMember: false });
  });
});

describe('EventCodec.encode', () => {
  it('looks its schema up and never registers: a missing one fails with one line naming the command', async () => {
    const registry = {
      lookup: () => Promise.resolve(null),
      register: () => Promise.reject(new Error('an encoder must not register')),
    } as unknown as RegistryClient;
    await expect(new EventCodec(registry).encode('order.placed', example('order-placed-v1'))).rejects.toMatchObject({
      type: 'SchemaNotProvisioned',
      message: 'subject order.placed-value does not hold order-placed-v1.avsc: run `npm run provision`',
    });
  });
});
