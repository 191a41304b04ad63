/** `npm run loyalty`: the choreographed loyalty service (its own consumer group). SIGTERM stops it cleanly. */
import { main } from '../../app/run-process';

main({
  service: 'kts-loyalty',
  usage: 'npm run loyalty',
  description:
    'The loyalty service: awards points for confirmed orders of loyalty members and takes them back when an order is undone.',
  roles: ['loyalty'],
  metrics: 'loyalty',
});
