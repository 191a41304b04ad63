import { main } from './start-workers';

main(['saga']);
