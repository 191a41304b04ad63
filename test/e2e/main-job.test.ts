import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { repoRoot } from '../../src/config/stack-config';

jest.setTimeout(600_000);

describe('the main job (npm start)', () => {
  it('runs the demo batch end to end and ends with the expected summary', () => {
    const root = repoRoot();
    // --exit: summarise and stop instead of waiting for a key; the servers stay up for the next suite.
    const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/main.ts', '--exit'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
    });
    const out = res.stdout;
    expect(res.stderr).not.toMatch(/✖/);
    expect(out).toMatch(/^confirmed\s+10\s+10\s/m);
    expect(out).toMatch(/^compensated \(FAILED\)\s+7\s+7\s/m);
    expect(out).toMatch(/^COMPENSATION_FAILED\s+0\s+0\s/m);
    expect(out).toMatch(/^dead-lettered\s+3\s+3\s/m);
    expect(out).toContain('duplicates re-sent: 3, workflow runs for those orders: 3 (one each)');
    expect(out).toMatch(/a confirmed saga: +http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/order-demo-/);
    expect(out).toMatch(/a compensated saga: +http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/order-demo-/);
    // Loyalty is choreographed (nobody calls it): its figures come from its own tables once it heard of every
    // confirmation. Every confirmed v2 order is a member's and earns points; nothing confirmed was undone.
    const handled = /confirmations handled (\d+)\/(\d+), (\d+) of (\d+) member orders earned points/.exec(out);
    expect(handled?.slice(1, 3)).toEqual(['10', '10']);
    expect(Number(handled?.[4])).toBeGreaterThan(0);
    expect(handled?.[3]).toBe(handled?.[4]);
    const points = /loyalty points awarded (\d+) \(expected (\d+)\), revoked (\d+) \(expected 0\)/.exec(out);
    expect(Number(points?.[1])).toBeGreaterThan(0);
    expect(points?.[1]).toBe(points?.[2]);
    expect(points?.[3]).toBe('0');
    expect(out).toContain('✔ every order ended as designed');
    expect(res.status).toBe(0);
  });
});
