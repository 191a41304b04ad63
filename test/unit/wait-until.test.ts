import { waitUntil } from '../support/wait-until';

describe('waitUntil, the one "wait until" of the tests', () => {
  it('returns the first value that satisfies the condition', async () => {
    let n = 0;
    await expect(
      waitUntil(
        'n to reach 3',
        () => Promise.resolve((n += 1)),
        (v) => v >= 3,
        { intervalMs: 1 },
      ),
    ).resolves.toBe(3);
  });

  it('fails naming what it waited for and the last value seen', async () => {
    await expect(
      waitUntil(
        'a miracle',
        () => Promise.resolve({ status: 'PENDING' }),
        (v) => v.status === 'DONE',
        {
          timeoutMs: 30,
          intervalMs: 5,
        },
      ),
    ).rejects.toThrow(/waiting for a miracle; last seen: \{"status":"PENDING"\}/);
  });

  it('fails at once on a throwing probe unless retryOnError says a refusal means "not yet"', async () => {
    let calls = 0;
    const flaky = () => {
      calls += 1;
      return calls < 3 ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve(true);
    };
    await expect(waitUntil('a server', flaky, undefined, { intervalMs: 1 })).rejects.toThrow('ECONNREFUSED');
    expect(calls).toBe(1);
    calls = 0;
    await expect(waitUntil('a server', flaky, undefined, { intervalMs: 1, retryOnError: true })).resolves.toBe(true);
    expect(calls).toBe(3);
    await expect(
      waitUntil('a server that never answers', () => Promise.reject(new Error('ECONNREFUSED')), undefined, {
        timeoutMs: 20,
        intervalMs: 5,
        retryOnError: true,
      }),
    ).rejects.toThrow(/last seen: error: ECONNREFUSED/);
  });

  it('ends the wait at once when bail throws, even with retryOnError', async () => {
    let probes = 0;
    let alive = true;
    const wait = waitUntil(
      'a process that dies',
      () => {
        probes += 1;
        if (probes === 2) alive = false;
        return Promise.resolve(false);
      },
      undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 1,
        retryOnError: true,
        bail: () => {
          if (!alive) throw new Error('the process exited');
        },
      },
    );
    await expect(wait).rejects.toThrow('the process exited');
    expect(probes).toBe(2);
  });
});
