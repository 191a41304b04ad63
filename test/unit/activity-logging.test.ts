import { Writable } from 'node:stream';

import type { Context as ActivityContext } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityExecuteInput } from '@temporalio/worker';

import { activityLoggingInterceptor } from '../../src/observability/activity-logging';
import { createLogger } from '../../src/observability/logger';
import { FailureType } from '../../src/shared/saga-contract';

/** Runs one activity attempt through the logging interceptor; returns the JSON lines it wrote. */
async function attempt(outcome: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const ctx = {
    info: { workflowExecution: { workflowId: 'order-o-1', runId: 'r' }, activityType: 'chargePayment', attempt: 1 },
  } as unknown as ActivityContext;
  const interceptor = activityLoggingInterceptor(createLogger('unit-test', sink))(ctx).inbound!;
  await interceptor.execute!({} as ActivityExecuteInput, outcome).catch(() => undefined);
  return lines;
}

describe('activity log lines', () => {
  it('an expected business outcome (declined card, out of stock) is one info line without a stack trace', async () => {
    for (const type of [FailureType.PaymentDeclined, FailureType.OutOfStock]) {
      const [line, ...rest] = await attempt(() =>
        Promise.reject(ApplicationFailure.nonRetryable('card declined', type)),
      );
      expect(rest).toEqual([]);
      expect(line).toMatchObject({ level: 'info', orderId: 'o-1', failureType: type, reason: 'card declined' });
      expect(JSON.stringify(line)).not.toContain('stack');
    }
  });

  it('a completed attempt is one info line with the correlation fields, activity type and attempt', async () => {
    const lines = await attempt(() => Promise.resolve('ok'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      msg: 'activity completed',
      orderId: 'o-1',
      workflowId: 'order-o-1',
      activityType: 'chargePayment',
      attempt: 1,
      durationMs: expect.any(Number) as unknown,
    });
    // No span is active here: an unknown trace id is left out, not written as null.
    expect(lines[0]).not.toHaveProperty('traceId');
  });

  it('any other failure stays a warning with the error', async () => {
    const [line] = await attempt(() => Promise.reject(ApplicationFailure.retryable('database down', 'DatabaseDown')));
    expect(line).toMatchObject({ level: 'warn', msg: 'activity failed', errorType: 'ApplicationFailure' });
    expect(JSON.stringify(line)).toContain('stack');
  });
});
