import { readFileSync } from 'node:fs';
import path from 'node:path';

import avro from 'avsc';

import { catalogEntry, EventCodec } from '../../src/events/codec';
import { EVENT_CATALOG, orderPlacedV1Avsc, orderPlacedV2Avsc } from '../../src/events/generated/event-schemas';
import { RegistryClient } from '../../src/kafka/registry-client';
import { decodeFrame, encodeFrame } from '../../src/kafka/wire-format';
import { provisionScope } from '../support/provision-scope';
import { endpoints, uniqueName } from '../support/stack';

jest.setTimeout(120_000);

const registry = new RegistryClient(endpoints.registryUrl);
const examples = (file: string): Record<string, unknown>[] =>
  JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'schemas', 'examples', file.replace(/\.avsc$/, '.json')), 'utf8'),
  ) as Record<string, unknown>[];
const typeOf = (schema: unknown) => avro.Type.forSchema(schema as avro.Schema);
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('event schemas in the registry (BACKWARD compatibility)', () => {
  const subject = `${uniqueName('contract_order_placed')}-value`;
  let v1Id = 0;
  let v2Id = 0;

  beforeAll(async () => {
    await registry.setCompatibility(subject, 'BACKWARD');
    v1Id = await registry.register(subject, orderPlacedV1Avsc);
    v2Id = await registry.register(subject, orderPlacedV2Avsc);
  });

  it('accepts order.placed v2 after v1 and gives each its own id', async () => {
    expect(v2Id).not.toBe(v1Id);
    expect(await registry.isCompatible(subject, orderPlacedV2Avsc)).toBe(true);
    // Registering the same schema again is idempotent: same id.
    expect(await registry.register(subject, orderPlacedV1Avsc)).toBe(v1Id);
  });

  it('lets v1 readers and v2 readers each read events written in both versions', async () => {
    const [v1Event] = examples('order-placed-v1.avsc');
    const [v2Event] = examples('order-placed-v2.avsc');
    const framedV1 = encodeFrame(v1Id, typeOf(orderPlacedV1Avsc).toBuffer(v1Event));
    const framedV2 = encodeFrame(v2Id, typeOf(orderPlacedV2Avsc).toBuffer(v2Event));
    // A consumer that has never seen these ids learns the writer schemas from the registry.
    const fresh = new RegistryClient(endpoints.registryUrl);
    const read = async (framed: Buffer, readerSchema: unknown) => {
      const { schemaId, body } = decodeFrame(framed);
      const writer = typeOf(JSON.parse(await fresh.schemaById(schemaId)));
      const reader = typeOf(readerSchema);
      return plain(reader.fromBuffer(body, reader.createResolver(writer)));
    };
    const { isLoyaltyMember: _dropped, ...v2AsSeenByV1 } = v2Event as { isLoyaltyMember: boolean };
    expect(await read(framedV1, orderPlacedV1Avsc)).toEqual(v1Event);
    expect(await read(framedV2, orderPlacedV1Avsc)).toEqual(v2AsSeenByV1);
    expect(await read(framedV1, orderPlacedV2Avsc)).toEqual({ ...v1Event, isLoyaltyMember: false });
    expect(await read(framedV2, orderPlacedV2Avsc)).toEqual(v2Event);
  });

  it('refuses an incompatible change', async () => {
    const breaking = {
      ...orderPlacedV2Avsc,
      fields: [...orderPlacedV2Avsc.fields, { name: 'promoCode', type: 'string' }],
    };
    expect(await registry.isCompatible(subject, breaking)).toBe(false);
    const refused = await registry.register(subject, breaking).then(
      () => undefined,
      (err: { status?: number }) => err.status,
    );
    expect(refused).toBe(409);
    // Control: the same schema is accepted where no rule applies, so the refusal above is the rule's.
    // (Apicurio's global default is NONE, which is why provisioning sets BACKWARD on every subject first.)
    const unguarded = `${uniqueName('contract_unguarded')}-value`;
    await registry.register(unguarded, orderPlacedV2Avsc);
    await expect(registry.register(unguarded, breaking)).resolves.toEqual(expect.any(Number));
    // Changing a field's type is refused too (long money → double would lose exactness).
    const retyped = {
      ...orderPlacedV2Avsc,
      fields: orderPlacedV2Avsc.fields.map((f) => (f.name === 'totalMinor' ? { ...f, type: 'string' } : f)),
    };
    expect(await registry.isCompatible(subject, retyped)).toBe(false);
  });

  it.each(EVENT_CATALOG.map((e) => [e.file, e] as const))('%s round-trips its example events', async (file, entry) => {
    // The codec only looks schemas up: provision this scope's subject the way `npm run provision` does.
    const prefix = uniqueName('contract');
    await provisionScope(prefix, { include: ['subject'], topics: [entry.eventType] });
    const topic = `${prefix}.${entry.eventType}`;
    const codec = new EventCodec(registry);
    const cases = examples(file);
    expect(cases.length).toBeGreaterThan(0);
    for (const event of cases) {
      expect(entry.schema.safeParse(event).success).toBe(true);
      const framed = await codec.encode(topic, event as { eventType: string; eventVersion: number });
      const { schemaId, body } = decodeFrame(framed);
      expect(schemaId).toBe(await codec.schemaId(topic, catalogEntry(entry.eventType, entry.version)!));
      const writer = typeOf(JSON.parse(await new RegistryClient(endpoints.registryUrl).schemaById(schemaId)));
      const decoded = plain(writer.fromBuffer(body));
      expect(decoded).toEqual(event);
      expect(entry.schema.parse(decoded)).toEqual(event);
    }
  });
});

describe('EventCodec lookup', () => {
  it('never registers: encoding for an unprovisioned subject fails with one line and leaves no subject', async () => {
    const topic = uniqueName('contract_codec');
    const codec = new EventCodec(registry);
    const event = examples('order-placed-v1.avsc')[0] as { eventType: string; eventVersion: number };
    await expect(codec.encode(topic, event)).rejects.toMatchObject({
      type: 'SchemaNotProvisioned',
      message: `subject ${topic}-value does not hold order-placed-v1.avsc: run \`npm run provision\``,
    });
    expect(await registry.versions(`${topic}-value`)).toEqual([]);
  });

  it('encodes with the id provisioning registered, under BACKWARD compatibility', async () => {
    const prefix = uniqueName('contract_codec');
    await provisionScope(prefix, { include: ['subject'], topics: ['order.placed'] });
    const topic = `${prefix}.order.placed`;
    const codec = new EventCodec(registry);
    const framed = await codec.encode(
      topic,
      examples('order-placed-v1.avsc')[0] as { eventType: string; eventVersion: number },
    );
    expect(decodeFrame(framed).schemaId).toBe((await registry.version(`${topic}-value`, 1)).id);
    expect(await registry.subjectCompatibility(`${topic}-value`)).toBe('BACKWARD');
  });
});
