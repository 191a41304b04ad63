import { startWorkerProcess } from './start-workers';

// Local use: the orchestrator and every service in one process, each on its own task queue.
startWorkerProcess(['saga', 'orders', 'inventory', 'payments', 'notifications']);
