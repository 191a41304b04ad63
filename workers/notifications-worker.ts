import { startWorkerProcess } from './start-workers';

startWorkerProcess(['notifications']);
