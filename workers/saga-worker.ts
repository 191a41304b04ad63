import { startWorkerProcess } from './start-workers';

startWorkerProcess(['saga']);
