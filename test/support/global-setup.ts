import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * Integration suites need the real servers: bring the stack up (a no-op when it is already healthy),
 * so `npm run test:integration` works on its own as well as under `npm test`.
 */
export default function globalSetup(): void {
  // Several projects share this setup within one Jest run; one check is enough.
  if (process.env.KTS_STACK_CHECKED === '1') return;
  const root = path.resolve(__dirname, '..', '..');
  const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/stack/cli.ts', 'up'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.status !== 0) throw new Error('the local stack did not come up; see the lines above');
  process.env.KTS_STACK_CHECKED = '1';
}
