/**
 * One log line per activity attempt, bound to the order it works for. Activities stay free of
 * logging plumbing: the worker wraps each execution, inside Temporal's OpenTelemetry activity span,
 * so the line carries the trace id the outbox row and the domain event carry too.
 */
import type { Context as ActivityContext } from '@temporalio/activity';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  Next,
} from '@temporalio/worker';

import { orderIdFromWorkflowId } from '../shared/saga-contract';
import type { Logger } from './logger';
import { withCorrelation } from './logger';
import { currentTraceId } from './tracing';

class CorrelatedActivityLogging implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: ActivityContext,
    private readonly logger: Logger,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
    const info = this.ctx.info;
    const workflowId = info.workflowExecution?.workflowId;
    const log = withCorrelation(this.logger, {
      orderId: workflowId === undefined ? undefined : orderIdFromWorkflowId(workflowId),
      workflowId,
      traceId: currentTraceId(),
    }).child({ activityType: info.activityType, attempt: info.attempt });
    const started = performance.now();
    try {
      const result = await next(input);
      log.info({ durationMs: Math.round(performance.now() - started) }, 'activity completed');
      return result;
    } catch (err) {
      // Business rejections are expected saga paths (they trigger compensations), hence warn, not error.
      log.warn(
        { durationMs: Math.round(performance.now() - started), errorType: (err as Error).name, err },
        'activity failed',
      );
      throw err;
    }
  }
}

/**
 * Activity interceptor factory that logs each attempt with orderId, workflowId and traceId. Register
 * it after Temporal's OpenTelemetry interceptors (inner), so their span is active when it runs.
 */
export function activityLoggingInterceptor(logger: Logger): ActivityInterceptorsFactory {
  return (ctx) => ({ inbound: new CorrelatedActivityLogging(ctx, logger) });
}
