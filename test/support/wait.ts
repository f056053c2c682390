/**
 * Waiting in tests: polling a condition with a deadline that names what was awaited.
 *
 *   await until(() => ops.length >= 3, 'three operations');          // a condition
 *   const s = await waitFor(() => shards.find(online), 5000, 'a replica online');  // a value
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls until predicate returns a truthy value and resolves with it; rejects after timeoutMs
 * naming `what`, with the last error the predicate threw, if any (an error does not end the
 * wait: a server may refuse while it starts).
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'the condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(20);
  }
}

/**
 * Polls until check returns true; rejects after ms naming `what`. An error that check throws
 * ends the wait with that error.
 */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}
