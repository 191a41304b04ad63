/** `npm run event-store`: the event store consumer. SIGTERM stops it cleanly. */
import { main } from '../app/run-process';

main({
  service: 'kts-event-store',
  usage: 'npm run event-store',
  description: 'The event store: appends every domain event, deduped by eventId, to an append-only PostgreSQL store.',
  roles: ['eventStore'],
  metrics: 'eventStore',
});
