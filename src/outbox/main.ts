/** `npm run outbox-cleaner`: deletes outbox rows once the connector's slot has confirmed them. */
import { main } from '../app/run-process';

main({
  service: 'kts-outbox-cleaner',
  usage: 'npm run outbox-cleaner',
  description:
    "The outbox cleaner: every round, deletes the services' outbox rows that Debezium has provably published (never one that is not).",
  roles: ['outboxCleaner'],
  metrics: 'outboxCleaner',
});
