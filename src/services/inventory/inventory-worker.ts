import { startWorkerProcess } from '../../../workers/start-workers';

startWorkerProcess(['inventory']);
