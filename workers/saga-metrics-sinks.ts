import type { InjectedSinks } from '@temporalio/worker';

import type { Metrics } from '../src/observability/metrics';
import type { SagaMetricsSinks } from '../src/shared/saga-contract';

/**
 * The worker side of the saga's metrics sinks. Not called during replay (the SDK's default), so a
 * saga replayed after a worker restart or cache eviction is not counted again. A workflow task that
 * fails after the call and is retried may call again: the counters are at least once, good enough
 * for rates and alerts, while the saga's own status stays the source of truth.
 */
export function sagaMetricsSinks(metrics?: Metrics): InjectedSinks<SagaMetricsSinks> {
  return {
    sagaMetrics: {
      compensated: {
        fn: (_info, step) => metrics?.compensations.inc({ step }),
      },
      parked: {
        // Each parking is a compensation that failed: the COMPENSATION_FAILED alert counts them.
        fn: () => metrics?.compensationFailed.inc(),
      },
      ended: {
        fn: (_info, outcome, eventOccurredAt) => {
          if (!metrics) return;
          metrics.sagaOutcomes.inc({ outcome });
          if (outcome === 'COMPENSATION_FAILED') metrics.compensationFailed.inc();
          // Sinks run once the workflow task completes, so the worker's clock is the saga's end.
          if (eventOccurredAt !== undefined) {
            metrics.eventToSagaCompleteSeconds.observe({ outcome }, Math.max(0, Date.now() - eventOccurredAt) / 1000);
          }
        },
      },
    },
  };
}
