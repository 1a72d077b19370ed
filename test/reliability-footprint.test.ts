// Short form of the footprint and long-run scenarios of `npm run soak`. The memory figures
// printed here run about 20 MB above the soak's: tap's @tapjs/processinfo puts its loader in
// every child's NODE_OPTIONS. The soak's figures are the shipped daemon's.
import t from 'tap';
import { run as footprint } from '../scripts/reliability/scenarios/footprint.js';
import { run as longRun } from '../scripts/reliability/scenarios/long-run.js';
import { figuresLine } from '../scripts/reliability/figures.js';
import { shippedRun } from '../scripts/reliability/shipped.js';

t.test('footprint: ONNX Runtime is loaded only when a model needs it', async (t) => {
  const [ort, native] = await footprint({ durationMs: 4000, rate: 100 });
  t.comment(figuresLine(ort!));
  t.comment(figuresLine(native!));
  t.equal(ort!.result.ortLoaded, true, 'an ort model maps ONNX Runtime');
  t.equal(native!.result.ortLoaded, false, 'a native-only agent never maps ONNX Runtime');
  t.same(native!.result.nodeArgs, shippedRun().nodeArgs, 'measured with the node flags of deploy/edge-agent.service');
  t.ok(shippedRun().env.MALLOC_ARENA_MAX, 'the unit bounds glibc malloc arenas');
  t.ok(native!.result.readyMs > 0 && native!.result.idleRssMb > 0 && native!.result.idlePssMb > 0, 'figures measured');
});

t.test('long run (short form, ~30 s): steady load, nothing lost, no runaway memory', async (t) => {
  const f = await longRun({ durationMs: 30_000, rate: 100 });
  t.comment(figuresLine(f));
  t.equal(f.lost, 0, 'lost 0');
  t.ok(f.samples >= 25, `RSS sampled each second (${f.samples} samples)`);
  t.ok(f.metricsSamples >= 20, `V8 heap read from /metrics beside RSS (${f.metricsSamples} readings)`);
  t.ok(Number.isFinite(f.nativeSlopeMbPerHour), `memory outside the JS heap has a trend (${f.nativeSlopeMbPerHour} MB/h)`);
  t.ok(f.secondHalfPeakMb <= f.firstHalfPeakMb + 40, `loose bound: 2nd-half peak ${f.secondHalfPeakMb} MB within 40 MB of 1st-half peak ${f.firstHalfPeakMb} MB`);
});
