import type { KafkaMessage } from 'kafkajs';

import type { SourceRecord } from '../../src/ingress/dead-letter';
import type { BatchPayload, PartitionHandlers } from '../../src/kafka/partition-runner';
import { PartitionRunner } from '../../src/kafka/partition-runner';

/** A kafkajs batch payload over `keys` (one record per key, offsets 0..n-1) that records what the runner did. */
class FakeBatch {
  readonly resolved: string[] = [];
  readonly committed: string[] = [];
  paused = 0;
  running = true;
  heartbeatFails = false;
  stale = false;
  readonly messages: KafkaMessage[];

  constructor(keys: string[]) {
    this.messages = keys.map((key, i) => ({
      key: Buffer.from(key),
      value: Buffer.from(`v${i}`),
      offset: String(i),
      timestamp: '0',
      attributes: 0,
      headers: {},
    }));
  }

  /** The highest resolved offset (what a commit would store, minus one), or undefined. */
  get watermark(): string | undefined {
    return this.resolved.at(-1);
  }

  payload(): BatchPayload {
    return {
      batch: { topic: 't', partition: 0, messages: this.messages } as BatchPayload['batch'],
      resolveOffset: (offset: string) => {
        const last = this.resolved.at(-1);
        // The runner must only ever move the resolved offset forward.
        if (last !== undefined && Number(offset) <= Number(last)) throw new Error(`resolved ${offset} after ${last}`);
        this.resolved.push(offset);
      },
      heartbeat: () => (this.heartbeatFails ? Promise.reject(new Error('rebalance in progress')) : Promise.resolve()),
      pause: () => {
        this.paused += 1;
        return () => undefined;
      },
      isRunning: () => this.running,
      isStale: () => this.stale,
      commitOffsetsIfNecessary: () => {
        if (this.watermark !== undefined) this.committed.push(this.watermark);
        return Promise.resolve();
      },
      uncommittedOffsets: () => ({ topics: [] }),
    };
  }
}

/** A handler whose records complete when the test says so. */
class ControlledHandler {
  readonly started: string[] = [];
  readonly handled: string[] = [];
  readonly blocked: string[] = [];
  private readonly waiters = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  maxConcurrent = 0;
  private current = 0;
  private readonly activeKeys = new Set<string>();
  sameKeyOverlap = false;

  handlers(release?: PartitionHandlers['release']): PartitionHandlers {
    return {
      handle: (s: SourceRecord) => this.handle(s),
      release,
      onBlocked: (s) => this.blocked.push(s.message.offset),
    };
  }

  private handle(s: SourceRecord): Promise<void> {
    const offset = s.message.offset;
    const key = s.message.key!.toString();
    if (this.activeKeys.has(key)) this.sameKeyOverlap = true;
    this.activeKeys.add(key);
    this.started.push(offset);
    this.current += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.current);
    return new Promise<void>((resolve, reject) => this.waiters.set(offset, { resolve, reject })).finally(() => {
      this.current -= 1;
      this.activeKeys.delete(key);
    });
  }

  complete(offset: string): void {
    this.waiters.get(offset)!.resolve();
    this.waiters.delete(offset);
    this.handled.push(offset);
  }

  fail(offset: string): void {
    this.waiters.get(offset)!.reject(new Error(`boom at ${offset}`));
    this.waiters.delete(offset);
  }

  get waiting(): string[] {
    return [...this.waiters.keys()];
  }
}

/** Lets pending promise callbacks run. */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

const backoff = { initialMs: 1, maxMs: 1 };

describe('PartitionRunner', () => {
  it('with one in flight handles records strictly one after another and resolves each', async () => {
    const fake = new FakeBatch(['a', 'b', 'c']);
    const h = new ControlledHandler();
    const run = new PartitionRunner(h.handlers(), { backoff }).runBatch(fake.payload());
    for (const o of ['0', '1', '2']) {
      await flush();
      expect(h.waiting).toEqual([o]);
      h.complete(o);
    }
    await run;
    expect(h.maxConcurrent).toBe(1);
    expect(fake.resolved).toEqual(['0', '1', '2']);
    expect(fake.committed).toEqual(['2']);
  });

  it('runs different keys side by side but never two records of one key at once, in offset order', async () => {
    const fake = new FakeBatch(['a', 'a', 'b', 'a', 'c']);
    const h = new ControlledHandler();
    const run = new PartitionRunner(h.handlers(), { backoff, maxInFlightPerPartition: 4 }).runBatch(fake.payload());
    await flush();
    // The window holds 0..3: a@0 and b@2 run; a@1 and a@3 wait for a@0 (a waiting record holds its slot).
    expect(h.waiting.sort()).toEqual(['0', '2']);
    h.complete('2');
    await flush();
    expect(h.waiting.sort()).toEqual(['0', '4']);
    h.complete('0');
    await flush();
    expect(h.waiting.sort()).toEqual(['1', '4']);
    h.complete('1');
    await flush();
    expect(h.waiting.sort()).toEqual(['3', '4']);
    h.complete('3');
    h.complete('4');
    await run;
    expect(h.sameKeyOverlap).toBe(false);
    expect(h.started.filter((o) => ['0', '1', '3'].includes(o))).toEqual(['0', '1', '3']);
    expect(fake.watermark).toBe('4');
  });

  it('resolves only below the lowest unfinished record when records complete out of order', async () => {
    const fake = new FakeBatch(['a', 'b', 'c', 'd']);
    const h = new ControlledHandler();
    const run = new PartitionRunner(h.handlers(), { backoff, maxInFlightPerPartition: 4 }).runBatch(fake.payload());
    await flush();
    h.complete('3');
    h.complete('1');
    await flush();
    expect(fake.resolved).toEqual([]); // 0 is unfinished
    h.complete('0');
    await flush();
    expect(fake.watermark).toBe('1'); // 2 is unfinished
    h.complete('2');
    await run;
    expect(fake.watermark).toBe('3');
  });

  it('on a failure mid-window pauses, lets the window drain and commits nothing at or past the failed record', async () => {
    const fake = new FakeBatch(['a', 'b', 'c', 'd', 'e', 'f']);
    const h = new ControlledHandler();
    const run = new PartitionRunner(h.handlers(), { backoff, maxInFlightPerPartition: 3 }).runBatch(fake.payload());
    await flush();
    expect(h.waiting).toEqual(['0', '1', '2']);
    h.complete('0');
    await flush();
    h.fail('1');
    await flush();
    // No new record starts after the failure; the ones in flight finish.
    expect(h.waiting.sort()).toEqual(['2', '3']);
    h.complete('3');
    h.complete('2');
    await run;
    expect(h.started).not.toContain('4');
    expect(fake.paused).toBe(1);
    expect(h.blocked).toEqual(['1']);
    expect(fake.watermark).toBe('0');
    expect(fake.committed).toEqual(['0']);
  });

  it('does not handle a later record of a key whose earlier record failed', async () => {
    const fake = new FakeBatch(['a', 'b', 'a']);
    const h = new ControlledHandler();
    const run = new PartitionRunner(h.handlers(), { backoff, maxInFlightPerPartition: 3 }).runBatch(fake.payload());
    await flush();
    h.complete('1');
    h.fail('0');
    await run;
    expect(h.started).not.toContain('2');
    expect(fake.resolved).toEqual([]);
  });

  it('moves past a released record and goes on with the batch', async () => {
    const fake = new FakeBatch(['a', 'b', 'c']);
    const h = new ControlledHandler();
    const released: string[] = [];
    const release = (s: SourceRecord): Promise<boolean> => {
      released.push(s.message.offset);
      return Promise.resolve(true);
    };
    const run = new PartitionRunner(h.handlers(release), { backoff, maxInFlightPerPartition: 2 }).runBatch(
      fake.payload(),
    );
    await flush();
    h.fail('0');
    h.complete('1');
    await flush();
    await flush();
    expect(released).toEqual(['0']);
    expect(h.waiting).toEqual(['2']);
    h.complete('2');
    await run;
    expect(fake.paused).toBe(0);
    expect(fake.watermark).toBe('2');
  });

  it('when revoked mid-flight starts nothing new and never resolves past a record still in flight', async () => {
    const fake = new FakeBatch(['a', 'b', 'c', 'd']);
    const h = new ControlledHandler();
    const run = new PartitionRunner(h.handlers(), { backoff, maxInFlightPerPartition: 2 }).runBatch(fake.payload());
    await flush();
    fake.stale = true; // rebalance: the partition was revoked
    h.complete('1');
    await flush();
    expect(fake.resolved).toEqual([]); // 0 is still in flight
    expect(h.waiting).toEqual(['0']);
    h.complete('0');
    await run;
    expect(h.started).toEqual(['0', '1']);
    expect(fake.watermark).toBe('1');
  });

  it('on shutdown mid-failure neither pauses nor asks for a release', async () => {
    const fake = new FakeBatch(['a', 'b']);
    const h = new ControlledHandler();
    const release = jest.fn(() => Promise.resolve(true));
    const run = new PartitionRunner(h.handlers(release), { backoff, maxInFlightPerPartition: 2 }).runBatch(
      fake.payload(),
    );
    await flush();
    fake.running = false;
    h.fail('0');
    h.complete('1');
    await run;
    expect(release).not.toHaveBeenCalled();
    expect(fake.paused).toBe(0);
    expect(fake.resolved).toEqual([]);
  });

  it('when a heartbeat fails lets the records in flight finish before it throws', async () => {
    const fake = new FakeBatch(['a', 'b', 'c']);
    const h = new ControlledHandler();
    let settled = false;
    const run = new PartitionRunner(h.handlers(), { backoff, maxInFlightPerPartition: 2 })
      .runBatch(fake.payload())
      .finally(() => (settled = true));
    await flush();
    fake.heartbeatFails = true;
    h.complete('0');
    await flush();
    await flush();
    expect(settled).toBe(false); // 1 is still in flight
    expect(h.started).not.toContain('2');
    h.complete('1');
    await expect(run).rejects.toThrow('rebalance in progress');
    expect(fake.watermark).toBe('1');
  });
});
