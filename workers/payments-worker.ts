import { main } from './start-workers';

main(['payments']);
