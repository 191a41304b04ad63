/** `npm run event-store`: the event store consumer (KTS_EVENT_STORE_* settings). SIGTERM stops it cleanly. */
import { loadEventStoreConfig, startEventStoreConsumer } from './event-store-consumer';

async function main(): Promise<void> {
  const cfg = loadEventStoreConfig();
  const running = await startEventStoreConsumer(cfg);
  process.stdout.write(`event store consuming ${cfg.topics.join(', ')} as ${cfg.groupId}\n`);
  const stop = () => {
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
