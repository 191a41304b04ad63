/**
 * Saves the histories of chosen runs as replay fixtures, `<scenario>-<version>.json` under
 * test/replay/histories/, in the server's JSON form (what the Web UI downloads and `temporal
 * workflow show -o json` prints). Every fixture in the repository comes from here: the workflow
 * tests call it with RECORD_HISTORIES=1, and `npm run histories:record` records runs from any server.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';

import { repoRoot } from '../config/stack-config';
import type { HistorySelection } from './live-histories';
import { liveHistories } from './live-histories';

export const FIXTURES_DIR = path.join(repoRoot(), 'test', 'replay', 'histories');

/** Scenario and version end up in a file name that the replay suite parses: keep them plain. */
const NAME_PART = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export class FixtureExistsError extends Error {
  override name = 'FixtureExistsError';
  readonly type = 'FixtureExists';
}

export interface FixtureTarget {
  /** What the run shows, e.g. `happy-path`, `declined-payment`. */
  scenario: string;
  /** The saga version the run was recorded from, e.g. `v2`: old versions' files are never replaced. */
  version: string;
  dir?: string;
  /** Replace an existing file (only ever for the version being developed). */
  overwrite?: boolean;
}

/** The fixture file a scenario and version are saved to. */
export function fixturePath(target: FixtureTarget): string {
  for (const [what, value] of [
    ['scenario', target.scenario],
    ['version', target.version],
  ] as const) {
    if (!NAME_PART.test(value)) throw new Error(`${what} "${value}" must be lower-case words joined by "-"`);
  }
  return path.join(target.dir ?? FIXTURES_DIR, `${target.scenario}-${target.version}.json`);
}

/**
 * Writes one history as a fixture. Refuses to replace an existing file unless asked: the files of
 * earlier versions stand for runs that may still be open when a new build deploys.
 */
export async function saveFixture(history: temporal.api.history.v1.IHistory, target: FixtureTarget): Promise<string> {
  if (!history.events?.length) throw new Error('the history has no events');
  const file = fixturePath(target);
  if (!target.overwrite) {
    const exists = await access(file).then(
      () => true,
      () => false,
    );
    if (exists) throw new FixtureExistsError(`${file} exists; pass overwrite (--force) to replace it`);
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(JSON.parse(historyToJSON(history)), null, 2) + '\n');
  return file;
}

/** Records one run (the latest run of the id unless `runId` is given). */
export async function recordRun(
  client: Client,
  run: { workflowId: string; runId?: string },
  target: FixtureTarget,
): Promise<string> {
  const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
  return saveFixture(history, target);
}

/**
 * Records every run a visibility selection finds. One run is saved as `<scenario>-<version>`; more
 * are numbered in listing order (newest first), `<scenario>-1-<version>`, `<scenario>-2-<version>`...
 */
export async function recordSelection(
  client: Client,
  selection: HistorySelection,
  target: FixtureTarget,
): Promise<string[]> {
  const found = [];
  for await (const h of liveHistories(client, selection)) found.push(h);
  if (found.length === 0) throw new Error('no orderSaga run matches the selection');
  const files: string[] = [];
  for (const [i, h] of found.entries()) {
    const scenario = found.length === 1 ? target.scenario : `${target.scenario}-${i + 1}`;
    files.push(await saveFixture(h.history, { ...target, scenario }));
  }
  return files;
}
