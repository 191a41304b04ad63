/** How long and how often {@link waitUntil} polls. */
export interface WaitOptions {
  /** Gives up after this long (default 120 s: a loaded machine runs every server at once). */
  timeoutMs?: number;
  /** Pause between probes (default 100 ms). */
  intervalMs?: number;
  /**
   * A probe that throws counts as "not yet" (its message becomes the last value seen) instead of
   * failing the wait: for servers that refuse connections while they start or fail over.
   */
  retryOnError?: boolean;
  /**
   * Called before every probe and never retried: throws to end the wait at once when waiting can no
   * longer succeed (the process being waited on has exited).
   */
  bail?: () => void;
}

/**
 * The one "wait until" of the tests: calls `probe` until `done` holds for what it returned, and
 * returns that value. On time-out it fails naming what was awaited and the last value seen, so a red
 * test says what never happened instead of just timing out. A probe that throws fails the wait at
 * once; one that may fail while a server starts catches that itself (and returns "not yet").
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean = (value) => value === true,
  { timeoutMs = 120_000, intervalMs = 100, retryOnError = false, bail }: WaitOptions = {},
): Promise<T> {
  const started = Date.now();
  for (;;) {
    bail?.();
    let seen: string;
    try {
      const value = await probe();
      if (done(value)) return value;
      seen = describe(value);
    } catch (err) {
      if (!retryOnError) throw err;
      seen = `error: ${(err as Error).message}`;
    }
    if (Date.now() - started >= timeoutMs) {
      const waited = Math.round((Date.now() - started) / 1000);
      throw new Error(`gave up after ${waited} s waiting for ${what}; last seen: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}
