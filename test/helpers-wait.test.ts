// The tests' wait helper: it names what it waited for as things stood at the timeout, not as
// they were when the wait began, and a describer that throws does not hide the timeout.
import t from 'tap';
import { waitFor, within } from './helpers/wait.js';

t.setTimeout(30_000);

t.test('waitFor returns the first truthy value', async (t) => {
  let n = 0;
  const v = await waitFor(() => (++n >= 3 ? `ready after ${n}` : false), { timeoutMs: 5_000, intervalMs: 1 });
  t.equal(v, 'ready after 3');
});

t.test('a what function describes the state at the timeout', async (t) => {
  let seen = 0;
  const timer = setInterval(() => seen++, 5);
  t.teardown(() => clearInterval(timer));
  const err = await waitFor(() => false, { timeoutMs: 200, intervalMs: 10, what: () => `more ticks (have ${seen})` }).catch((e: Error) => e);
  t.ok(err instanceof Error, 'it times out');
  const have = Number(/have (\d+)/.exec((err as Error).message)?.[1]);
  t.ok(have > 0, `the message carries the count at the timeout, not the 0 at the start: ${(err as Error).message}`);
});

t.test('a describer that throws leaves the timeout message', async (t) => {
  const err = await waitFor(() => false, { timeoutMs: 50, what: () => { throw new Error('store closed'); } }).catch((e: Error) => e);
  t.match((err as Error).message, /^timed out after 50 ms waiting for \(the state could not be described: Error: store closed\)/);
});

t.test('the last error of the condition is part of the message', async (t) => {
  const err = await waitFor(() => { throw new Error('not yet'); }, { timeoutMs: 50, what: 'a thing' }).catch((e: Error) => e);
  t.match((err as Error).message, /waiting for a thing: Error: not yet/);
});

t.test('within rejects after its deadline, naming what it awaited', async (t) => {
  await t.rejects(within(new Promise(() => {}), 30, 'a never-settling promise'), /timed out after 30 ms waiting for a never-settling promise/);
  t.equal(await within(Promise.resolve(7), 1_000, 'seven'), 7);
});
