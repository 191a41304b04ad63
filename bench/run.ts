/**
 * `npm run bench -- <name> [args...]`: runs bench/<name>.ts in its own Node process with the rest of
 * the arguments, e.g. `npm run bench -- pipeline --quick` or `npm run bench -- saga-throughput 200 1`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

// Modules the benchmarks import, not benchmarks themselves (workflow files are bundled by them).
const HELPERS = new Set(['run', 'pipeline-report', 'lean-saga-activities']);
const available = readdirSync(__dirname)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .filter((n) => !HELPERS.has(n) && !n.endsWith('-workflow') && !n.endsWith('-workflows'));
const [name, ...args] = process.argv.slice(2);
const file = name ? path.join(__dirname, `${name}.ts`) : '';
if (!name || !available.includes(name) || !existsSync(file)) {
  process.stderr.write(`usage: npm run bench -- <name> [args]\nbenchmarks: ${available.join(', ')}\n`);
  process.exit(2);
}
const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: 'inherit' });
// Ctrl-C reaches the benchmark through the terminal's process group; this waits for its clean-up.
process.on('SIGINT', () => undefined);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
