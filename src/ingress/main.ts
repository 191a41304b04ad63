/**
 * The ingress process: `npm run ingress`. Prometheus metrics on :9465/metrics by default.
 * SIGTERM/SIGINT stop it gracefully: in-flight records finish and are committed before it exits.
 */
import { main } from '../app/run-process';

main({
  service: 'kts-ingress',
  usage: 'npm run ingress',
  description:
    'The Kafka ingress: consumes order.placed and order.cancelled (Avro), dedupes, starts or signals orderSaga, dead-letters poison to <topic>.dlq.',
  roles: ['ingress'],
  metrics: 'ingress',
});
