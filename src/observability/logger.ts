import pino from 'pino';

/**
 * The one JSON logger. Child loggers carry the correlation fields (orderId, eventId, workflowId,
 * traceId) so a single order can be followed across the ingress, workers and services.
 */
export type Logger = pino.Logger;

export interface Correlation {
  orderId?: string;
  eventId?: string;
  workflowId?: string;
  traceId?: string;
}

export function createLogger(service: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: process.env.LOG_LEVEL ?? 'info',
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A child logger bound to one order's correlation fields, dropping the ones not known yet. */
export function withCorrelation(logger: Logger, c: Correlation): Logger {
  return logger.child(Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)));
}
