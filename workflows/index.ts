// Every export of this module is registered as a workflow type by the saga worker.
export { orderSaga } from './order-saga';
