import fs from 'node:fs';
import path from 'node:path';

import { STACK_VERSIONS, stackEndpoints } from '../../config/stack-config';
import type { Component } from '../component';
import { componentDir, getJson, JAVA_PREREQ, javaBin, logFile, MVN_PREREQ, pidFile } from '../component';
import { cached, fetchMavenArtifact, untar } from '../downloads';
import { spawnDetached } from '../processes';

function appDir(cacheDir: string): string {
  return path.join(cacheDir, `apicurio-registry-${STACK_VERSIONS.apicurio}`);
}

/** Apicurio Registry (3.0.x runs on Java 17; 3.1+ needs 21) with its Confluent-compatible API. */
export const registry: Component = {
  name: 'registry',
  dependsOn: [],
  prerequisites: [JAVA_PREREQ, MVN_PREREQ],
  ports: (cfg) => [cfg.ports.registry],
  address: (cfg) => stackEndpoints(cfg).registryUrl,
  startupTimeoutMs: 90_000,

  async install({ cfg, progress }) {
    await cached(appDir(cfg.cacheDir), async (tmp) => {
      const archive = await fetchMavenArtifact(
        cfg.cacheDir,
        {
          group: 'io.apicurio',
          artifact: 'apicurio-registry-app',
          version: STACK_VERSIONS.apicurio,
          type: 'tar.gz',
          classifier: 'all',
        },
        progress,
      );
      progress('unpacking');
      await untar(archive, tmp);
    });
  },

  start({ cfg }) {
    const dir = componentDir(cfg, 'registry');
    fs.mkdirSync(dir, { recursive: true });
    const jar = path.join(appDir(cfg.cacheDir), `apicurio-registry-app-${STACK_VERSIONS.apicurio}-runner.jar`);
    return spawnDetached({
      command: javaBin(),
      args: [
        '-Xms64m',
        '-Xmx384m',
        `-Dquarkus.http.host=${cfg.host}`,
        `-Dquarkus.http.port=${cfg.ports.registry}`,
        // A file-backed H2 database: schema ids must survive a restart, or old records become undecodable.
        `-Dapicurio.datasource.url=jdbc:h2:file:${path.join(dir, 'registry')};DB_CLOSE_ON_EXIT=FALSE`,
        '-Dquarkus.log.level=WARN',
        '-Dquarkus.log.category."io.apicurio".level=INFO',
        '-jar',
        jar,
      ],
      cwd: dir,
      logFile: logFile(cfg, 'registry'),
      pidFile: pidFile(cfg, 'registry'),
    });
  },

  async health(cfg) {
    const subjects = await getJson(`${stackEndpoints(cfg).registryUrl}/subjects`);
    if (!Array.isArray(subjects)) throw new Error('registry /subjects did not answer a list');
    return `Apicurio ${STACK_VERSIONS.apicurio}, ${subjects.length} subject(s)`;
  },
};
