import { startWorkerProcess } from '../../../workers/start-workers';

startWorkerProcess(['orders']);
