import { startWorkerProcess } from './start-workers';

startWorkerProcess(['inventory']);
