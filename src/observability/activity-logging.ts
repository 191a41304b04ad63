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

import { BUSINESS_OUTCOME_FAILURE_TYPES, orderIdFromWorkflowId } from '../shared/saga-contract';
import type { Logger } from './logger';
import { correlationFields } from './logger';
import { currentTraceId } from './tracing';

class CorrelatedActivityLogging implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: ActivityContext,
    private readonly logger: Logger,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
    const info = this.ctx.info;
    const workflowId = info.workflowExecution?.workflowId;
    // One fields object per attempt instead of two child loggers: a child serializes its bindings
    // when created, and every attempt of every activity made two. The line's fields are the same.
    const fields = {
      ...correlationFields({
        orderId: workflowId === undefined ? undefined : orderIdFromWorkflowId(workflowId),
        workflowId,
        traceId: currentTraceId(),
      }),
      activityType: info.activityType,
      attempt: info.attempt,
    };
    const log = this.logger;
    const started = performance.now();
    try {
      const result = await next(input);
      log.info({ ...fields, durationMs: Math.round(performance.now() - started) }, 'activity completed');
      return result;
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type !== undefined && BUSINESS_OUTCOME_FAILURE_TYPES.includes(type)) {
        // An expected business outcome (declined card, out of stock): one info line, no stack trace.
        log.info(
          {
            ...fields,
            durationMs: Math.round(performance.now() - started),
            failureType: type,
            reason: (err as Error).message,
          },
          'activity ended with a business outcome',
        );
        throw err;
      }
      // Other rejections still take a saga path (compensations) but deserve a look, hence warn.
      log.warn(
        { ...fields, durationMs: Math.round(performance.now() - started), errorType: (err as Error).name, err },
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
