import { startWorkerProcess } from './start-workers';

startWorkerProcess(['orders']);
