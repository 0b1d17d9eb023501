import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../src/shared-reads.js';

const hang = () => new Promise<never>(() => {});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** When a call settled, in ms after `t0`, and how. */
async function outcome(call: Promise<unknown>, t0: number) {
  try {
    return { value: await call, at: performance.now() - t0 };
  } catch (error) {
    return { error: (error as Error).message, at: performance.now() - t0 };
  }
}

/** Two calls that never answer, the second begun `gap` ms after the first; outcomes timed from the first. */
async function twoHanging(deadlines: Deadlines, gap: number) {
  const t0 = performance.now();
  const first = outcome(deadlines.run(hang), t0);
  await sleep(gap);
  return { t0, first, second: outcome(deadlines.run(hang), t0) };
}

describe('Deadlines: store calls under one timeout, sharing one timer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers what the call answers, and passes its error through', async () => {
    const deadlines = new Deadlines(1_000);
    await expect(deadlines.run(() => 42)).resolves.toBe(42);
    await expect(deadlines.run(async () => 'later')).resolves.toBe('later');
    await expect(deadlines.run(() => Promise.reject(new Error('store down')))).rejects.toThrow('store down');
    await expect(
      deadlines.run(() => {
        throw new Error('thrown');
      }),
    ).rejects.toThrow('thrown');
  });

  it('fails each slow call at its own deadline, not at an earlier call\'s', async () => {
    const deadlines = new Deadlines(60);
    const { t0, first, second } = await twoHanging(deadlines, 40);
    const fast = outcome(deadlines.run(() => sleep(5).then(() => 'fast')), t0);
    const [a, b, c] = await Promise.all([first, second, fast]);
    expect(a.error).toBe('store call exceeded 60 ms');
    expect(b.error).toBe('store call exceeded 60 ms');
    expect(c.value).toBe('fast');
    // Timers fire no earlier than asked; the second call began 40 ms after the first.
    expect(a.at).toBeGreaterThanOrEqual(58);
    expect(b.at).toBeGreaterThanOrEqual(98);
    expect(b.at - a.at).toBeGreaterThanOrEqual(30);
  });

  it('still times calls out after the call the timer was set for has settled', async () => {
    const deadlines = new Deadlines(50);
    const t0 = performance.now();
    const quick = deadlines.run(() => sleep(1).then(() => 'ok'));
    const slow = outcome(deadlines.run(hang), t0);
    await expect(quick).resolves.toBe('ok');
    const result = await slow;
    expect(result.error).toBe('store call exceeded 50 ms');
    expect(result.at).toBeLessThan(1_000);
  });

  it('a call that answers after its deadline changes nothing: the caller had the timeout', async () => {
    const deadlines = new Deadlines(20);
    let release!: (value: string) => void;
    const call = deadlines.run(() => new Promise<string>((resolve) => (release = resolve)));
    await expect(call).rejects.toThrow('store call exceeded 20 ms');
    release('too late');
    await sleep(5);
    // The list is whole: later calls are timed as before.
    await expect(deadlines.run(hang)).rejects.toThrow('store call exceeded 20 ms');
  });

  it('a late answer leaves the calls still waiting, and those begun after it, on the clock', async () => {
    const deadlines = new Deadlines(100);
    let release!: (value: string) => void;
    const late = deadlines.run(() => new Promise<string>((resolve) => (release = resolve)));
    await sleep(40);
    const waiting = deadlines.run(hang);
    await expect(late).rejects.toThrow('store call exceeded 100 ms');
    release('too late');
    // Long enough for the late answer to arrive, short of the waiting call's deadline.
    await sleep(5);
    const after = deadlines.run(hang);
    const gaveUp = sleep(1_000).then(() => 'still waiting');
    await expect(Promise.race([waiting, gaveUp])).rejects.toThrow('store call exceeded 100 ms');
    await expect(Promise.race([after, gaveUp])).rejects.toThrow('store call exceeded 100 ms');
  });

  it('many calls in flight at once: each one settles once, the slow ones fail', async () => {
    const deadlines = new Deadlines(40);
    const calls = Array.from({ length: 200 }, (_, i) => deadlines.run(i % 3 === 0 ? hang : () => sleep(i % 7).then(() => i)));
    const settled = await Promise.allSettled(calls);
    settled.forEach((result, i) => {
      if (i % 3 === 0) expect(result).toMatchObject({ status: 'rejected', reason: { message: 'store call exceeded 40 ms' } });
      else expect(result).toEqual({ status: 'fulfilled', value: i });
    });
  });

  it('fails each slow call within its time when the wall clock steps back', async () => {
    const { t0, first, second } = await twoHanging(new Deadlines(50), 5);
    // An NTP step or a resumed VM: the wall clock goes back an hour while both calls wait.
    const wall = Date.now.bind(Date);
    const stepped = vi.spyOn(Date, 'now').mockImplementation(() => wall() - 3_600_000);
    try {
      const gaveUp = sleep(1_000).then(() => ({ error: 'still waiting', at: performance.now() - t0 }));
      const [a, b] = await Promise.all([Promise.race([first, gaveUp]), Promise.race([second, gaveUp])]);
      expect([a.error, b.error]).toEqual(['store call exceeded 50 ms', 'store call exceeded 50 ms']);
    } finally {
      stepped.mockRestore();
    }
  });

  it('times out under fake timers that leave the clock alone', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const deadlines = new Deadlines(2_000);
    let failed: unknown;
    deadlines.run(hang).catch((error: unknown) => (failed = error));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(failed).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect((failed as Error).message).toBe('store call exceeded 2000 ms');
  });
});
