import { main } from './start-workers';

main(['orders']);
