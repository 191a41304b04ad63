import path from 'node:path';

import type { StackConfig } from '../config/stack-config';
import type { ProgressFn } from './downloads';
import type { PidRecord } from './processes';
import type { SecureListeners } from './secure';

export type ComponentName = 'postgres' | 'temporal' | 'kafka' | 'registry' | 'connect';

/** Everything a component needs to install, start and check itself. */
export interface StackContext {
  cfg: StackConfig;
  progress: ProgressFn;
  /** TLS and SASL listeners instead of plaintext ones (see secure.ts); the local stack runs without. */
  secure?: SecureListeners;
}

/**
 * One real server of the local stack. `install` fills the shared cache (no-op when warm), `start`
 * spawns the detached process, `health` talks to the server for real and returns a short detail.
 */
export interface Component {
  name: ComponentName;
  /** Components that must be healthy before this one starts (some depend on the settings). */
  dependsOn: ComponentName[] | ((cfg: StackConfig) => ComponentName[]);
  /** Commands on PATH this component needs, with the hint shown when one is missing. */
  prerequisites: { command: string; hint: string }[];
  ports(cfg: StackConfig): number[];
  address(cfg: StackConfig): string;
  startupTimeoutMs: number;
  install(ctx: StackContext): Promise<void>;
  start(ctx: StackContext): PidRecord | Promise<PidRecord>;
  /**
   * Pid files of further processes the component started besides the one `start` returned (the
   * other nodes of a Kafka cluster): `down` stops them too and `status` counts their memory.
   */
  extraPidFiles?(cfg: StackConfig): string[];
  health(cfg: StackConfig): Promise<string>;
  /**
   * Whether a process this tool started (its pid record) is what these settings would start; when
   * not (another mode of the same component), `up` replaces it without waiting for it to be healthy.
   */
  startedAs?(cfg: StackConfig, rec: PidRecord): boolean;
}

/** The components `c` needs healthy first, under these settings. */
export function dependenciesOf(c: Component, cfg: StackConfig): ComponentName[] {
  return typeof c.dependsOn === 'function' ? c.dependsOn(cfg) : c.dependsOn;
}

export function componentDir(cfg: StackConfig, name: ComponentName): string {
  return path.join(cfg.dataDir, name);
}

export function pidFile(cfg: StackConfig, name: ComponentName): string {
  return path.join(cfg.dataDir, 'run', `${name}.pid.json`);
}

export function logFile(cfg: StackConfig, name: ComponentName): string {
  return path.join(cfg.dataDir, 'logs', `${name}.log`);
}

/** Which JVM to use: JAVA_HOME when set, else `java` from PATH. */
export function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

export const JAVA_PREREQ = {
  command: 'java',
  hint: 'install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME',
};
export const MVN_PREREQ = { command: 'mvn', hint: 'install Maven 3.8+ (Debian: apt-get install maven)' };

/** GET a URL on the stack and parse JSON, with a short timeout and a clear error. */
export async function getJson(url: string, timeoutMs = 3000): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return res.json();
}
