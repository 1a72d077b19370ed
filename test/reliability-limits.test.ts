// Short form of the limit scenarios of `npm run soak`: a disk budget under a telemetry flood,
// overload of the inference queue, a consumer that stops acknowledging, faulty model updates.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { flood, tryMount } from '../scripts/reliability/scenarios/disk-full.js';
import { run as overload } from '../scripts/reliability/scenarios/overload.js';
import { run as slowConsumer } from '../scripts/reliability/scenarios/slow-consumer.js';
import { run as modelFaults } from '../scripts/reliability/scenarios/model-faults.js';
import { figuresLine } from '../scripts/reliability/figures.js';

t.test('disk budget: a flood with the broker away evicts by policy, and the counts add up', async (t) => {
  const f = await flood({ durationMs: 6000, rate: 200 }, 'disk-budget (256 KB)', { maxBytes: 256 * 1024 }, undefined, 'test');
  t.comment(figuresLine(f));
  t.ok(f.evicted > 0, 'the budget forced evictions');
  t.ok(f.delivered > 0, 'what was kept was delivered after the broker came back');
  t.equal(f.lost, 0, 'accepted = delivered + evicted + queued');
});

t.test('disk full: the data dir on a 2 MB tmpfs, a flood with the broker away; counts exact, all drains', async (t) => {
  const m = tryMount(2048);
  if ('error' in m) {
    t.plan(0, `tmpfs mount refused (${m.error}): this form did not run; test/telemetry-bounds.test.ts covers SQLITE_FULL from the page cap`); // reported as skipped, with the reason
    return;
  }
  t.teardown(() => m.unmount());
  const dataDir = path.join(m.dir, 'data');
  mkdirSync(dataDir);
  const f = await flood({ durationMs: 6000, rate: 200 }, 'disk-full (tmpfs 2 MB)', {}, dataDir, 'test');
  t.comment(figuresLine(f));
  t.notMatch(f.notes ?? '', /INCONSISTENT|still queued/, 'the buffer drained and its depth never went negative');
  t.ok(f.evicted > 0, `the small disk forced evictions (${f.evicted})`);
  t.match(f.notes ?? '', /"full":[1-9]/, 'evicted with the reason "full"');
  t.ok(f.delivered > 0, 'what was kept was delivered after the broker came back');
  t.equal(f.lost, 0, 'accepted = delivered + evicted + queued');
  t.equal(f.delivered + f.evicted, f.accepted, `accepted ${f.accepted} = delivered ${f.delivered} + evicted ${f.evicted}: nothing left behind`);
});

t.test('overload: 429 beyond the queue, nothing else fails, memory bounded', async (t) => {
  const f = await overload({ durationMs: 8000, rate: 100, queueLimit: 8 });
  t.comment(figuresLine(f));
  t.comment(`admitted p99 ${f.admittedP99Ms.toFixed(1)} ms vs unloaded p99 ${f.unloadedP99Ms.toFixed(1)} ms: ${f.ratio}x (reported, not asserted: timing belongs to the soak's figures)`);
  t.ok(f.rejected > 0, 'requests beyond the queue got 429');
  t.ok(f.admitted > 0, 'admitted requests were served');
  t.match(f.notes, /other: 0;/, 'no status but 200 and 429');
  t.ok(f.peakRssMb < f.idleRssMb + 150, `peak RSS ${f.peakRssMb} MB stays within 150 MB of idle ${f.idleRssMb} MB`);
});

// Only the PUBACK-held phase here: with the controller process restarted, the soak's
// slow-consumer row shows records lost at the controller (docs/reliability.md, known
// problems: FleetController.start() attaches its message handler after the CONNACK, so the
// broker's queued backlog can arrive before anything listens).
t.test('slow consumer: the buffer obeys its budget while nothing is acknowledged; nothing lost', async (t) => {
  const f = await slowConsumer({ durationMs: 8000, rate: 100, phases: ['puback-held'] });
  t.comment(figuresLine(f));
  t.ok(f.maxBufferBytes <= f.budgetBytes, `buffer peak ${f.maxBufferBytes} B within the ${f.budgetBytes} B budget`);
  t.equal(f.lost, 0, 'accepted = delivered + evicted + queued');
});

t.test('model faults: verification failure, NaN, crash on load: the last good version serves on', async (t) => {
  const f = await modelFaults({ durationMs: 6000, rate: 100 });
  t.comment(figuresLine(f));
  t.ok(f.verifyRefused, 'the tampered package was refused');
  t.ok(f.crashRestarts >= 1, 'the crash-on-load candidate killed the process');
  t.equal(f.unexpectedFailures, 0, 'no failed request besides the expected ones');
  t.same(Object.keys(f.servedBy).filter((v) => v !== '1.0.0' && v !== '2.0.0-nan'), [], 'only the good version (and the NaN one until its rollback) answered');
  t.ok(f.nanAnswers <= 5, `the NaN version answered ${f.nanAnswers} times before its rollback`);
});
