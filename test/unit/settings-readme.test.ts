import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describeVariables, ROLES, SHARED_SECTIONS } from '../../src/config/settings';
import { repoRoot } from '../../src/config/stack-config';

const root = repoRoot();
const README = path.join(root, 'README.md');

/** Runs the generator's check (a child process: Prettier is loaded the way `npm run` loads it). */
function check(cwd = root): { status: number | null; out: string } {
  const res = spawnSync(
    path.join(root, 'node_modules', '.bin', 'tsx'),
    [path.join(root, 'src', 'config', 'settings-readme.ts'), '--check'],
    { cwd, encoding: 'utf8', env: { ...process.env, KTS_README: path.join(cwd, 'README.md') } },
  );
  return { status: res.status, out: res.stdout + res.stderr };
}

describe("README's settings table", () => {
  it('is the one the settings model generates (run npm run settings:readme after changing a variable)', () => {
    const res = check();
    expect(res.out).toContain('up to date');
    expect(res.status).toBe(0);
  });

  it('the check fails on a stale table', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kts-readme-'));
    copyFileSync(path.join(root, '.prettierrc.json'), path.join(dir, '.prettierrc.json'));
    writeFileSync(
      path.join(dir, 'README.md'),
      readFileSync(README, 'utf8').replace('| `KTS_SCOPE`', '| `KTS_SCOPE_OLD`'),
    );
    const res = check(dir);
    expect(res.out).toContain('stale');
    expect(res.status).toBe(1);
  });

  it('documents every variable with a description', () => {
    const vars = describeVariables([...SHARED_SECTIONS, ...ROLES]);
    expect(vars.length).toBeGreaterThan(50);
    expect(vars.filter((v) => v.description.length < 10).map((v) => v.name)).toEqual([]);
    const readme = readFileSync(README, 'utf8');
    expect(vars.filter((v) => !readme.includes(`\`${v.name}\``)).map((v) => v.name)).toEqual([]);
  });
});
