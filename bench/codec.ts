/**
 * Avro decode + validate + upcast on one core: `EventCodec.decode` over framed `order.placed`
 * records (half v1, half v2, 1–3 lines each), as the ingress calls it per record. The registry is an
 * in-memory stand-in (ids in registration order), so only the codec is timed; a real registry is
 * asked once per schema id anyway.
 *
 * Usage: npx tsx bench/codec.ts [records=200000] [--quick]   (--quick: 20,000 records)
 * Profile: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/codec.ts --quick
 */
import os from 'node:os';

import { placedEvent } from '../src/cli/order-events';
import { EventCodec } from '../src/events/codec';
import { TOPICS } from '../src/events/topics';
import type { RegistryClient } from '../src/kafka/registry-client';

const QUICK = process.argv.includes('--quick');
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const RECORDS = QUICK ? 20_000 : Number(positional[0] ?? 200_000);
const DISTINCT = 1_000;

/** Schemas by id in registration order; `lookup` registers, as provisioning would have. */
function inMemoryRegistry(): RegistryClient {
  const schemas: string[] = [];
  const idOf = (schema: object | string) => {
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    const known = schemas.indexOf(text);
    if (known >= 0) return known + 1;
    schemas.push(text);
    return schemas.length;
  };
  const registry: Pick<RegistryClient, 'lookup' | 'schemaById'> = {
    lookup: (_subject, schema) => {
      const id = idOf(schema);
      return Promise.resolve({ id, version: id });
    },
    schemaById: (id) => Promise.resolve(schemas[id - 1]!),
  };
  return registry as RegistryClient;
}

async function main(): Promise<void> {
  const codec = new EventCodec(inMemoryRegistry());
  const frames: Buffer[] = [];
  for (let i = 0; i < DISTINCT; i += 1) {
    frames.push(await codec.encode(TOPICS.orderPlaced, placedEvent({ version: i % 2 === 0 ? 1 : 2 })));
  }
  for (const f of frames) await codec.decode(f, 'order.placed'); // caches and JIT warm
  const t0 = performance.now();
  for (let i = 0; i < RECORDS; i += 1) {
    const out = await codec.decode(frames[i % DISTINCT]!, 'order.placed');
    if (!out.ok) throw new Error(`bench record did not decode: ${out.reason}: ${out.message}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    [
      `machine: ${os.cpus().length} cores, Node ${process.version}, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      `${RECORDS} order.placed records (v1/v2 alternating), decode + validate + upcast: ` +
        `${Math.round(RECORDS / seconds)} records/s (target ≥ 100,000)`,
    ].join('\n') + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
