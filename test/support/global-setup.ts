import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * Integration suites need the real servers: bring the stack up (a no-op when it is already healthy),
 * so `npm run test:integration` works on its own as well as under `npm test`.
 */
export default function globalSetup(): void {
  const root = path.resolve(__dirname, '..', '..');
  const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/stack/cli.ts', 'up'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.status !== 0) throw new Error('the local stack did not come up; see the lines above');
}
