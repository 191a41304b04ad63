import { main } from './start-workers';

// Local use: the orchestrator and every service in one process, each on its own task queue.
main(['saga', 'orders', 'inventory', 'payments', 'notifications']);
