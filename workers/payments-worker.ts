import { startWorkerProcess } from './start-workers';

startWorkerProcess(['payments']);
