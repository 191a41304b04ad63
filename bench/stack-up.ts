/**
 * Times `stack up` cold (empty download cache), warm on a fresh data folder, and warm restart, then
 * reads each component's resident memory. Runs a private stack on other ports; the shared stack is
 * untouched. Usage: npx tsx bench/stack-up.ts [--skip-cold]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { repoRoot } from '../src/config/stack-config';
import type { StatusRow } from '../src/stack/stack';

const root = repoRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-bench-'));
fs.chmodSync(tmp, 0o755);
const ports = {
  KTS_PG_PORT: '35432',
  KTS_TEMPORAL_PORT: '37233',
  KTS_TEMPORAL_UI_PORT: '38233',
  KTS_KAFKA_PORT: '39092',
  KTS_KAFKA_CONTROLLER_PORT: '39093',
  KTS_REGISTRY_PORT: '38081',
  KTS_CONNECT_PORT: '38083',
};

function cli(args: string[], env: NodeJS.ProcessEnv): { ms: number; stdout: string } {
  const t0 = Date.now();
  const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/stack/cli.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...ports, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (res.status !== 0) throw new Error(`stack ${args.join(' ')} failed:\n${res.stdout}`);
  return { ms: Date.now() - t0, stdout: res.stdout };
}

function timeUp(label: string, env: NodeJS.ProcessEnv): number {
  process.stderr.write(`\n# ${label}\n`);
  const { ms } = cli(['up'], env);
  process.stderr.write(`# ${label}: ${(ms / 1000).toFixed(1)} s\n`);
  return ms;
}

const skipCold = process.argv.includes('--skip-cold');
const results: [string, number][] = [];
const dataA = { KTS_DATA_DIR: path.join(tmp, 'data-a') };
const dataB = { KTS_DATA_DIR: path.join(tmp, 'data-b') };
try {
  if (!skipCold) {
    const coldCache = { KTS_CACHE_DIR: path.join(tmp, 'cache') };
    results.push(['cold: empty cache, new data folder', timeUp('cold', { ...coldCache, ...dataA })]);
    cli(['down'], { ...coldCache, ...dataA });
  }
  results.push(['warm: cached downloads, new data folder', timeUp('warm, fresh data', dataB)]);
  cli(['down'], dataB);
  results.push(['warm restart: cached downloads, existing data', timeUp('warm restart', dataB)]);
  results.push(['warm no-op: everything already running', timeUp('no-op', dataB)]);
  // Let the JVMs settle before reading memory.
  spawnSync('sleep', ['10']);
  const rows = JSON.parse(cli(['status', '--json'], dataB).stdout) as StatusRow[];
  console.log('\n| `stack up` | seconds |\n|---|---|');
  for (const [label, ms] of results) console.log(`| ${label} | ${(ms / 1000).toFixed(1)} |`);
  console.log('\n| component | resident memory (idle, MiB) |\n|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.rssBytes ? Math.round(r.rssBytes / 2 ** 20) : '?'} |`);
} finally {
  cli(['down'], dataB);
  fs.rmSync(tmp, { recursive: true, force: true });
}
