/**
 * Every schema file against the live registry: a version the subject already holds is fine as it
 * is; a new one must be one the registry would accept under BACKWARD compatibility (readers on the
 * new schema can read what the subject's latest version wrote), and the subject must enforce
 * BACKWARD at all, or the registry would accept a breaking change when provisioning registers it.
 */
import avro from 'avsc';

import { readSchemaFiles, SCHEMAS_DIR } from '../events/codegen';
import { valueSubject } from '../events/topics';
import type { RegistryClient } from '../kafka/registry-client';

/** Compatibility levels that include BACKWARD. */
const BACKWARD_LEVELS = new Set(['BACKWARD', 'BACKWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE']);

export type SchemaVerdict =
  | { kind: 'registered'; version: number }
  | { kind: 'new-subject' }
  | { kind: 'compatible'; latestVersion: number }
  | { kind: 'incompatible'; latestVersion: number; reason: string }
  | { kind: 'weak-rule'; level: string };

export interface SchemaCheckResult {
  file: string;
  subject: string;
  verdict: SchemaVerdict;
}

export const isSchemaProblem = (r: SchemaCheckResult) =>
  r.verdict.kind === 'incompatible' || r.verdict.kind === 'weak-rule';

/** Why avsc cannot read data written with `writer` using `reader`; undefined if it can. */
function localIncompatibility(reader: object, writerText: string): string | undefined {
  try {
    const readerType = avro.Type.forSchema(reader as avro.Schema);
    const writerType = avro.Type.forSchema(JSON.parse(writerText) as avro.Schema);
    readerType.createResolver(writerType);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Checks each `schemas/*.avsc` file (or those of `dir`) against the subject of its event type's
 * topic, `<topicPrefix><eventType>-value`. Tests pass a unique prefix so their subjects never mix
 * with the real ones.
 */
export async function checkSchemas(
  registry: RegistryClient,
  options: { dir?: string; topicPrefix?: string } = {},
): Promise<SchemaCheckResult[]> {
  const files = await readSchemaFiles(options.dir ?? SCHEMAS_DIR);
  const results: SchemaCheckResult[] = [];
  for (const { info, schema } of files) {
    const subject = valueSubject(`${options.topicPrefix ?? ''}${info.eventType}`);
    const push = (verdict: SchemaVerdict) => results.push({ file: info.file, subject, verdict });
    const latest = await registry.latest(subject);
    if (!latest) {
      push({ kind: 'new-subject' });
      continue;
    }
    const level = await registry.compatibilityLevel(subject);
    if (!BACKWARD_LEVELS.has(level)) {
      push({ kind: 'weak-rule', level });
      continue;
    }
    const version = (await registry.lookup(subject, schema))?.version;
    if (version !== undefined) {
      push({ kind: 'registered', version });
      continue;
    }
    if (await registry.isCompatible(subject, schema)) {
      push({ kind: 'compatible', latestVersion: latest.version });
      continue;
    }
    // The registry says no without saying why; avsc's schema resolution names the field.
    const reason =
      localIncompatibility(schema as object, latest.schema) ??
      'the registry refuses it (its own rules; avsc finds the schemas resolvable)';
    push({ kind: 'incompatible', latestVersion: latest.version, reason });
  }
  return results;
}
