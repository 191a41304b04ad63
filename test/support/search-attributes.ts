import type { Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';

import { INDEXED_VALUE_TYPES } from '../../src/provision/steps';
import { ORDER_SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';

/**
 * For tests on a server nobody provisioned (a private dev server, the workflow harness): registers the
 * search attributes the saga upserts, which `npm run provision` does everywhere else. Without them each
 * saga's first workflow task fails and retries forever. Idempotent; a concurrent registration that wins
 * is fine. Returns the names it added.
 */
export async function ensureOrderSearchAttributes(
  connection: Pick<NativeConnection | Connection, 'operatorService'>,
  namespace: string,
): Promise<string[]> {
  const listed = await connection.operatorService.listSearchAttributes({ namespace });
  const known = listed.customAttributes ?? {};
  const missing = ORDER_SEARCH_ATTRIBUTES.filter((k) => known[k.name] === undefined);
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, indexedValueType(k.type)])),
    });
  } catch (err) {
    const again = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
    const still = missing.filter((k) => again[k.name] === undefined).map((k) => k.name);
    if (still.length > 0) {
      throw new Error(
        `namespace ${namespace} lacks the search attributes ${still.join(', ')}: ${(err as Error).message}`,
      );
    }
  }
  return missing.map((k) => k.name);
}

function indexedValueType(type: string): number {
  const n = INDEXED_VALUE_TYPES[type];
  if (n === undefined) throw new Error(`unknown search attribute type ${type}`);
  return n;
}
