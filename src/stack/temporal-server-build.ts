import fs from 'node:fs';
import path from 'node:path';

import { STACK_VERSIONS } from '../config/stack-config';
import type { ProgressFn } from './downloads';
import { cached, run, StackError } from './downloads';
import { hasCommand } from './processes';

/** Where the built server and its SQL tool live in the shared cache. */
export function temporalServerDir(cacheDir: string): string {
  return path.join(cacheDir, `temporal-server-${STACK_VERSIONS.temporalServer}`);
}

export function temporalServerBin(cacheDir: string): string {
  return path.join(temporalServerDir(cacheDir), 'bin', 'temporal-server');
}

export function temporalSqlToolBin(cacheDir: string): string {
  return path.join(temporalServerDir(cacheDir), 'bin', 'temporal-sql-tool');
}

/**
 * Builds the full Temporal server and its SQL tool from the Go module proxy into the cache, once.
 * No release binary of the server ships for every platform we run on, and `go install` of a pinned
 * version is reproducible. Cold: ≈ 5¾ min on a busy 2-core machine (toolchain and modules downloaded
 * too); warm: a `.complete` check, no go command at all.
 */
export async function ensureTemporalServerBuild(
  cacheDir: string,
  progress: ProgressFn = () => {},
): Promise<'hit' | 'filled'> {
  return cached(temporalServerDir(cacheDir), async (tmp) => {
    if (!hasCommand('go')) {
      throw new StackError("'go' is not on PATH (the full Temporal server is built with it): install Go 1.21+");
    }
    const bin = path.join(tmp, 'bin');
    // GOTOOLCHAIN: the module asks for a newer Go than the one installed; the go command fetches it.
    const env = { ...process.env, GOTOOLCHAIN: STACK_VERSIONS.temporalServerGo, GOBIN: bin };
    const v = STACK_VERSIONS.temporalServer;
    let modules = 0;
    const onLine = (line: string) => {
      if (line.startsWith('go: downloading')) progress(`go install: ${++modules} modules downloaded`);
    };
    const t0 = Date.now();
    progress(`go install go.temporal.io/server/cmd/server@v${v} (minutes on first run)`);
    await run('go', ['install', `go.temporal.io/server/cmd/server@v${v}`], { env, onLine });
    progress('go install go.temporal.io/server/cmd/tools/sql');
    await run('go', ['install', `go.temporal.io/server/cmd/tools/sql@v${v}`], { env, onLine });
    fs.renameSync(path.join(bin, 'server'), path.join(bin, 'temporal-server'));
    fs.renameSync(path.join(bin, 'sql'), path.join(bin, 'temporal-sql-tool'));
    progress(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });
}
