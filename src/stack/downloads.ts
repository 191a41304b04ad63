import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Reports progress of a long step as short text ("12 files, 31.4 MB"). */
export type ProgressFn = (text: string) => void;

export class StackError extends Error {
  override name = 'StackError';
}

/**
 * Runs `fn` to fill `dir` unless `dir/.complete` exists. Work happens in a sibling temp folder that
 * is renamed into place, so an interrupted download never looks finished.
 */
export async function cached(dir: string, fn: (tmpDir: string) => Promise<void>): Promise<'hit' | 'filled'> {
  if (fs.existsSync(path.join(dir, '.complete'))) return 'hit';
  const tmp = `${dir}.partial-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await fn(tmp);
    fs.writeFileSync(path.join(tmp, '.complete'), new Date().toISOString());
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return 'filled';
}

/**
 * Runs a command, feeding each output line to `onLine`; rejects with the tail of its output when it
 * fails so the one-line error can say what went wrong.
 */
export function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    const tail: string[] = [];
    let partial = '';
    const feed = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout.on('data', feed);
    child.stderr.on('data', feed);
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve();
      else {
        const why = tail.filter((l) => /ERROR|error|Could not|refused|denied|No matching/.test(l)).slice(-3);
        reject(
          new StackError(
            `${command} ${args.slice(0, 3).join(' ')} … failed (exit ${code}): ${(why.length ? why : tail.slice(-3)).join(' | ')}`,
          ),
        );
      }
    });
  });
}

/** Counts Maven's "Downloaded from" lines and their sizes, for a live progress figure. */
export function mavenProgress(progress: ProgressFn): (line: string) => void {
  let files = 0;
  let bytes = 0;
  const units: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
  return (line) => {
    const m = /Downloaded from \S+: \S+ \(([\d.]+) (B|kB|MB|GB)/.exec(line);
    if (!m?.[1] || !m[2]) return;
    files += 1;
    bytes += Number(m[1]) * (units[m[2]] ?? 1);
    progress(`downloading from Maven Central: ${files} files, ${(bytes / 1e6).toFixed(1)} MB`);
  };
}

/** Maven arguments that keep its repository inside our cache folder and its output parseable. */
export function mavenArgs(cacheDir: string): string[] {
  return ['-B', `-Dmaven.repo.local=${path.join(cacheDir, 'm2')}`];
}

/** Fetches one artifact (e.g. a tar.gz distribution) from Maven Central and returns its local path. */
export async function fetchMavenArtifact(
  cacheDir: string,
  coords: { group: string; artifact: string; version: string; type: string; classifier?: string },
  progress: ProgressFn,
): Promise<string> {
  const gav = [coords.group, coords.artifact, coords.version, coords.type, coords.classifier].filter(Boolean).join(':');
  await run('mvn', [...mavenArgs(cacheDir), 'dependency:get', `-Dartifact=${gav}`, '-Dtransitive=false'], {
    onLine: mavenProgress(progress),
  });
  const file = `${coords.artifact}-${coords.version}${coords.classifier ? `-${coords.classifier}` : ''}.${coords.type}`;
  return path.join(cacheDir, 'm2', ...coords.group.split('.'), coords.artifact, coords.version, file);
}

/** Unpacks a .tar.gz into a folder. */
export function untar(archive: string, into: string): Promise<void> {
  fs.mkdirSync(into, { recursive: true });
  return run('tar', ['-xzf', archive, '-C', into]);
}
