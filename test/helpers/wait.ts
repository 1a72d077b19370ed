// Waiting for a condition with a deadline, never a fixed sleep.

/** Thrown from a condition to stop waiting at once (the thing waited for can no longer happen). */
export class WaitAbort extends Error {}
export async function waitFor<T>(
  cond: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  /** what: a description, or a function that describes the state at the timeout. */
  opts: { timeoutMs?: number; intervalMs?: number; what?: string | (() => string) } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      if (err instanceof WaitAbort) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${describe(opts.what) ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/** The description at the timeout: a describer that throws (its subject closed) still leaves the timeout's message. */
function describe(what: string | (() => string) | undefined): string | undefined {
  if (typeof what !== 'function') return what;
  try {
    return what();
  } catch (err) {
    return `(the state could not be described: ${String(err)})`;
  }
}

/**
 * A promise that must settle within ms, else a rejection naming what was awaited. Create the
 * promise (attach the listener) before the action that can cause the event, then await this.
 */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
