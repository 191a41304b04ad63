import { main } from './start-workers';

main(['inventory']);
