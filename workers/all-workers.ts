import { WORKER_ROLES } from '../src/config/settings';
import { startWorkerProcess } from './start-workers';

// Local use: the orchestrator and every service in one process, each on its own task queue.
startWorkerProcess(WORKER_ROLES);
