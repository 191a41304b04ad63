import { main } from './start-workers';

main(['notifications']);
