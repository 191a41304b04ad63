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

/**
 * The JSON logger of a process (or of one component, e.g. an ingress started by the main job):
 * ISO timestamps, level names, and `service` on every line, at `level` (the settings' LOG_LEVEL).
 */
export function createLogger(service: string, destination?: pino.DestinationStream, level = 'info'): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** One order's correlation fields for a log line, dropping the ones not known yet. */
export function correlationFields(c: Correlation): Partial<Correlation> {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
}

/** A child logger bound to one order's correlation fields, dropping the ones not known yet. */
export function withCorrelation(logger: Logger, c: Correlation): Logger {
  return logger.child(correlationFields(c));
}
