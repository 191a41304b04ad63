/**
 * Generates `src/events/generated/event-schemas.ts` from `schemas/*.avsc`, so the Avro schemas stay
 * the single source of truth: the TypeScript types are `z.infer` of zod validators that this file
 * derives mechanically from each schema. Run `npm run events:codegen` after editing a schema;
 * `npm run events:codegen -- --check` (and a unit test) fail when the generated file is stale.
 *
 * Besides standard Avro, a field may carry `"const": <value>` (used by eventType and eventVersion),
 * which Avro ignores and the generator turns into a zod literal.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { repoRoot } from '../config/stack-config';

export const SCHEMAS_DIR = path.join(repoRoot(), 'schemas');
export const GENERATED_FILE = path.join(repoRoot(), 'src', 'events', 'generated', 'event-schemas.ts');

type AvroSchema = string | AvroSchema[] | { [key: string]: unknown };

interface AvroField {
  name: string;
  type: AvroSchema;
  const?: string | number;
  doc?: string;
}

const INT32 = 'z.int32()';
const PRIMITIVES: Record<string, string> = {
  string: 'z.string()',
  int: INT32,
  // avsc decodes longs to JS numbers and refuses ones beyond 2^53, so a safe integer is exact.
  long: 'z.int()',
  boolean: 'z.boolean()',
  float: 'z.number()',
  double: 'z.number()',
  bytes: 'z.instanceof(Buffer)',
  null: 'z.null()',
};

/** Translates one Avro type into zod source; `named` holds records and enums defined earlier in the file. */
function zodFor(type: AvroSchema, named: Map<string, string>, namespace: string): string {
  if (typeof type === 'string') {
    const primitive = PRIMITIVES[type];
    if (primitive) return primitive;
    const ref = named.get(type) ?? named.get(`${namespace}.${type}`);
    if (!ref) throw new Error(`unknown Avro type ${type}`);
    return ref;
  }
  if (Array.isArray(type)) {
    const branches = type.filter((t) => t !== 'null');
    if (branches.length === 1 && branches[0] !== undefined && type.length === 2) {
      return `${zodFor(branches[0], named, namespace)}.nullable()`;
    }
    return `z.union([${type.map((t) => zodFor(t, named, namespace)).join(', ')}])`;
  }
  const t = type.type as string;
  const logical = type.logicalType as string | undefined;
  if (t === 'string' && logical === 'uuid') return 'z.uuid()';
  if (t === 'long' && logical === 'timestamp-millis') return 'z.int().nonnegative()';
  if (t === 'array') return `z.array(${zodFor(type.items as AvroSchema, named, namespace)})`;
  if (t === 'map') return `z.record(z.string(), ${zodFor(type.values as AvroSchema, named, namespace)})`;
  if (t === 'enum') {
    const src = `z.enum(${JSON.stringify(type.symbols)})`;
    named.set(qualified(type, namespace), src);
    return src;
  }
  if (t === 'record') {
    const ns = (type.namespace as string | undefined) ?? namespace;
    const fields = (type.fields as AvroField[]).map((f) => `${f.name}: ${fieldZod(f, named, ns)}`);
    const src = `z.object({ ${fields.join(', ')} })`;
    named.set(qualified(type, namespace), src);
    return src;
  }
  if (PRIMITIVES[t]) return PRIMITIVES[t];
  throw new Error(`the generator does not support Avro type ${JSON.stringify(type)}`);
}

function fieldZod(field: AvroField, named: Map<string, string>, namespace: string): string {
  if (field.const !== undefined) return `z.literal(${JSON.stringify(field.const)})`;
  return zodFor(field.type, named, namespace);
}

function qualified(type: { [key: string]: unknown }, namespace: string): string {
  const name = type.name as string;
  return name.includes('.') ? name : `${(type.namespace as string | undefined) ?? namespace}.${name}`;
}

function pascal(kebab: string): string {
  return kebab.replace(/(^|-)([a-z0-9])/g, (_m, _d: string, c: string) => c.toUpperCase());
}

export interface SchemaFileInfo {
  file: string;
  eventType: string;
  version: number;
  recordName: string;
}

/** Reads every schema file and checks the conventions the ingress relies on. */
export async function readSchemaFiles(dir = SCHEMAS_DIR): Promise<{ info: SchemaFileInfo; schema: AvroSchema }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.avsc')).sort();
  const out: { info: SchemaFileInfo; schema: AvroSchema }[] = [];
  for (const file of files) {
    const schema = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as { [key: string]: unknown };
    const fields = (schema.fields ?? []) as AvroField[];
    const eventType = fields.find((f) => f.name === 'eventType')?.const;
    const version = fields.find((f) => f.name === 'eventVersion')?.const;
    if (typeof eventType !== 'string' || typeof version !== 'number') {
      throw new Error(`${file}: eventType and eventVersion fields need a "const"`);
    }
    const expected = `${eventType.replace(/\./g, '-')}-v${version}.avsc`;
    if (file !== expected) throw new Error(`${file}: a ${eventType} v${version} schema must be named ${expected}`);
    for (const required of ['eventId', 'occurredAt']) {
      if (!fields.some((f) => f.name === required)) throw new Error(`${file}: every event needs ${required}`);
    }
    out.push({ info: { file, eventType, version, recordName: schema.name as string }, schema });
  }
  return out;
}

/** The generated module's source, formatted like the rest of the code base. */
export async function generateEventModule(dir = SCHEMAS_DIR): Promise<string> {
  const schemas = await readSchemaFiles(dir);
  const parts: string[] = [
    '/* Generated by src/events/codegen.ts from schemas/*.avsc. Do not edit: run `npm run events:codegen`. */\n' +
      "import { z } from 'zod';",
  ];
  const catalog: string[] = [];
  for (const { info, schema } of schemas) {
    const base = pascal(info.file.replace(/\.avsc$/, ''));
    const camel = base[0]!.toLowerCase() + base.slice(1);
    const zod = zodFor(schema, new Map(), 'kts.events');
    parts.push(
      `/** \`schemas/${info.file}\`: the Avro schema as registered. */\n` +
        `export const ${camel}Avsc = ${JSON.stringify(schema)} as const;`,
      `/** Structure of ${info.eventType} v${info.version}, derived from \`schemas/${info.file}\`. */\n` +
        `export const ${camel}Schema = ${zod};\n` +
        `export type ${base} = z.infer<typeof ${camel}Schema>;`,
    );
    catalog.push(
      `{ eventType: ${JSON.stringify(info.eventType)}, version: ${info.version}, file: ${JSON.stringify(info.file)}, avsc: ${camel}Avsc, schema: ${camel}Schema }`,
    );
  }
  parts.push(
    '/** Every event type and version, in file order. */\n' +
      `export const EVENT_CATALOG = [${catalog.join(', ')}] as const;`,
  );
  // A dev dependency, loaded only here: the schema readers above also serve the deploy check, and
  // prettier's module cannot load inside Jest's sandbox (it imports an ES module at load time).
  const { default: prettier } = await import('prettier');
  const options = (await prettier.resolveConfig(GENERATED_FILE)) ?? {};
  return prettier.format(parts.join('\n\n'), { ...options, parser: 'typescript' });
}

async function main(): Promise<void> {
  const source = await generateEventModule();
  if (process.argv.includes('--check')) {
    const current = await readFile(GENERATED_FILE, 'utf8').catch(() => '');
    if (current !== source) {
      console.error(`${path.relative(repoRoot(), GENERATED_FILE)} is stale: run npm run events:codegen`);
      process.exit(1);
    }
    return;
  }
  await writeFile(GENERATED_FILE, source);
  console.log(`wrote ${path.relative(repoRoot(), GENERATED_FILE)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
