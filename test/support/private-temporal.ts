/** The private Temporal dev server lives with the stack tool (benchmarks use it too); tests import it from here. */
export { PrivateTemporal, freePort } from '../../src/stack/private-temporal';
