import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';

import { ORDER_SEARCH_ATTRIBUTES } from '../src/shared/search-attributes';

/** temporal.api.enums.v1.IndexedValueType numbers of the SDK's search attribute types. */
const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

/**
 * Makes sure the namespace knows every search attribute the saga upserts: without them each saga's
 * first workflow task fails and retries forever. Registers the missing ones (idempotent: a
 * concurrent registration that wins is fine) and returns their names. Provisioning
 * (`npm run provision`) does the same for real clusters; where this process may not change the
 * namespace (Temporal Cloud, a locked-down operator API) it fails with the one line that says so.
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
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_VALUE_TYPE[k.type]])),
    });
  } catch (err) {
    const again = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
    const still = missing.filter((k) => again[k.name] === undefined).map((k) => k.name);
    if (still.length > 0) {
      throw new Error(
        `namespace ${namespace} lacks the search attributes ${still.join(', ')} and this process may not add them ` +
          `(${(err as Error).message}): run \`npm run provision\` against it first`,
      );
    }
  }
  return missing.map((k) => k.name);
}
