/**
 * The ingress process: `npm run ingress`. Settings come from KTS_INGRESS_* variables (see config.ts).
 * SIGTERM/SIGINT stop it gracefully: in-flight records finish and are committed before it exits.
 */
import pino from 'pino';

import { loadIngressConfig } from './config';
import { startIngress } from './app';

async function main(): Promise<void> {
  const cfg = loadIngressConfig();
  const log = pino({ level: cfg.logLevel });
  const ingress = await startIngress(cfg, log);
  log.info({ groupId: cfg.groupId, topics: cfg.topics }, 'ingress running');
  const shutdown = (signal: string) => {
    log.info({ signal }, 'stopping');
    ingress.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
