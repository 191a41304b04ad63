/**
 * The one partition loop of every consumer of the app (ingress, loyalty). Per kafkajs batch it hands
 * records to the consumer's handler, at most `maxInFlightPerPartition` at a time, never two of the
 * same key at once and a key's records strictly in offset order. An offset is resolved (and so
 * committed) only below the lowest record not yet handled: a record completed above an unfinished
 * one is fetched again later, and the handler's ledger makes that redelivery a no-op.
 *
 * A handler error pauses just that partition with exponential backoff; the record is fetched again
 * on resume, never skipped, unless the consumer's `release` hook says an operator released it.
 * With `maxInFlightPerPartition` 1 this is exactly the sequential loop each consumer had before.
 */
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';

import type { SourceRecord } from '../ingress/dead-letter';

/** Exponential backoff with full jitter, so paused partitions do not all retry in lock-step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(initialMs, Math.round(ceiling * random()));
}

/** A position a partition is blocked at. */
export interface BlockedPosition {
  topic: string;
  partition: number;
  offset: string;
}

/** What a consumer plugs into the runner. */
export interface PartitionHandlers {
  /**
   * Handles one record durably (its own stats and metrics included). Throws only for transient
   * trouble: the runner then retries the same record later and never commits past it.
   */
  handle(source: SourceRecord): Promise<void>;
  /**
   * After `handle` threw on `source`: true when the record was released (dead-lettered by order of
   * an operator) so the partition may move past it. Absent: never released.
   */
  release?(source: SourceRecord, error: unknown): Promise<boolean>;
  /** The partition pauses on `source` for `delayMs` after its `attempt`-th (0-based) failure. */
  onBlocked(source: SourceRecord, error: unknown, attempt: number, delayMs: number): void;
  /** The partition moved past the record it was blocked at (handled or released). */
  onUnblocked?(position: BlockedPosition): void;
}

export interface PartitionRunnerOptions {
  backoff: { initialMs: number; maxMs: number };
  /** Records of one partition handled side by side (distinct keys only). 1: strictly sequential. */
  maxInFlightPerPartition?: number;
}

/** The ordering key of a record: records with equal keys are never handled concurrently. */
function keyOf(message: KafkaMessage): string {
  // A record without a key shares the empty key with every other such record: sequential, safe.
  return message.key?.toString() ?? '';
}

/** The subset of kafkajs's batch payload the runner uses (a fake implements it in tests). */
export type BatchPayload = Pick<
  EachBatchPayload,
  | 'batch'
  | 'resolveOffset'
  | 'heartbeat'
  | 'pause'
  | 'isRunning'
  | 'isStale'
  | 'commitOffsetsIfNecessary'
  | 'uncommittedOffsets'
>;

const NOT_STARTED = 0;
const IN_FLIGHT = 1;
const DONE = 2;

export class PartitionRunner {
  private readonly attempts = new Map<string, number>();
  private readonly blocked = new Map<string, BlockedPosition>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  private readonly maxInFlight: number;

  constructor(
    private readonly handlers: PartitionHandlers,
    private readonly options: PartitionRunnerOptions,
  ) {
    this.maxInFlight = Math.max(1, options.maxInFlightPerPartition ?? 1);
  }

  /** The kafkajs `eachBatch` callback (run with `eachBatchAutoResolve: false`). */
  async runBatch(p: BatchPayload): Promise<void> {
    const { batch } = p;
    const tp = `${batch.topic}/${batch.partition}`;
    const messages = batch.messages;
    const state = new Array<number>(messages.length).fill(NOT_STARTED);
    /** Index of the lowest record not yet handled: everything below it is resolved. */
    let watermark = 0;
    /** Next index the dispatcher considers. */
    let next = 0;
    /** The lowest record that failed in the current window, with its error. */
    let failure: { index: number; error: unknown } | undefined;
    const inFlight = new Set<Promise<void>>();
    /** Per key, the task of its last dispatched record: the key's next record waits for it. */
    const tails = new Map<string, Promise<boolean>>();
    /** A heartbeat that failed (e.g. a rebalance began): rethrown once nothing is in flight any more. */
    let heartbeatError: { error: unknown } | undefined;
    const halted = (): boolean =>
      failure !== undefined || heartbeatError !== undefined || !p.isRunning() || p.isStale();
    const sourceAt = (i: number): SourceRecord => ({
      topic: batch.topic,
      partition: batch.partition,
      message: messages[i]!,
    });

    const dispatch = (i: number): void => {
      const key = keyOf(messages[i]!);
      const before = tails.get(key);
      state[i] = IN_FLIGHT;
      const task = (async (): Promise<boolean> => {
        // The key's previous record must be handled first; if it was not, neither is this one.
        if (before && !(await before)) return false;
        if (halted()) return false;
        try {
          await this.handlers.handle(sourceAt(i));
          return true;
        } catch (error) {
          if (!failure || i < failure.index) failure = { index: i, error };
          return false;
        }
      })();
      tails.set(key, task);
      const tracked = task.then((ok) => {
        state[i] = ok ? DONE : NOT_STARTED;
        inFlight.delete(tracked);
        if (tails.get(key) === task) tails.delete(key);
      });
      inFlight.add(tracked);
    };

    const advance = async (): Promise<void> => {
      const from = watermark;
      while (watermark < messages.length && state[watermark] === DONE) watermark += 1;
      if (watermark === from) return;
      this.unblock(tp);
      p.resolveOffset(messages[watermark - 1]!.offset);
      if (heartbeatError) return;
      // Not thrown at once: records still in flight must finish before the batch returns, or the
      // partition's next owner could handle them while this member still does.
      await p.heartbeat().catch((error: unknown) => {
        heartbeatError = { error };
      });
    };

    for (;;) {
      while (!halted() && next < messages.length && inFlight.size < this.maxInFlight) {
        if (state[next] === NOT_STARTED) dispatch(next);
        next += 1;
      }
      if (inFlight.size > 0) {
        await Promise.race(inFlight);
        await advance();
        continue;
      }
      // The window drained: either the batch is done, we were stopped, or a record failed.
      if (heartbeatError) throw heartbeatError.error;
      if (!failure || !p.isRunning()) break; // shutting down: unhandled records stay uncommitted
      const { index, error } = failure;
      const source = sourceAt(index);
      const released = this.handlers.release ? await this.handlers.release(source, error) : false;
      if (released) {
        state[index] = DONE;
        failure = undefined;
        await advance();
        next = watermark; // records skipped because of the failure are dispatched again, in order
        continue;
      }
      this.pause(p, source, error, tp);
      break; // unresolved: after resume the partition is fetched again from the watermark
    }
    if (p.isRunning()) {
      await p.commitOffsetsIfNecessary();
    } else {
      // Graceful shutdown: whatever was handled is committed before the group is left.
      await p.commitOffsetsIfNecessary(p.uncommittedOffsets());
    }
  }

  private pause(p: BatchPayload, source: SourceRecord, error: unknown, tp: string): void {
    const attempt = this.attempts.get(tp) ?? 0;
    this.attempts.set(tp, attempt + 1);
    this.blocked.set(tp, { topic: source.topic, partition: source.partition, offset: source.message.offset });
    const delay = backoffDelay(attempt, this.options.backoff.initialMs, this.options.backoff.maxMs);
    this.handlers.onBlocked(source, error, attempt, delay);
    const resume = p.pause();
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      resume();
    }, delay);
    this.resumeTimers.add(timer);
  }

  private unblock(tp: string): void {
    this.attempts.delete(tp);
    const was = this.blocked.get(tp);
    if (!was) return;
    this.blocked.delete(tp);
    this.handlers.onUnblocked?.(was);
  }

  /** Cancels pending resumes (the consumer is disconnecting). Safe to call twice. */
  stop(): void {
    for (const t of this.resumeTimers) clearTimeout(t);
    this.resumeTimers.clear();
  }
}
