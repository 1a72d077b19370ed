import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { allFinite, DEFAULT_PROBATION, Probation } from '../agent/rollout/probation.js';
import { RolloutStore } from '../agent/rollout/rollout-store.js';

const rules = { ...DEFAULT_PROBATION, minInferences: 50, minDurationMs: 1000 };

t.test('a healthy candidate passes after N inferences and T ms, not before', async (t) => {
  const p = new Probation(rules, 2.0, 0);
  for (let i = 0; i < 49; i++) p.observe(1.5, true, true);
  t.equal(p.verdict(5000).kind, 'pending', '49 of 50 inferences: still on probation');
  p.observe(1.5, true, true);
  t.equal(p.verdict(500).kind, 'pending', 'enough inferences but not enough time');
  t.equal(p.verdict(1000).kind, 'pass');
});

t.test('with few required inferences, a candidate is not committed before its latency could be judged', async (t) => {
  const few = { ...rules, minInferences: 10, minDurationMs: 0 };
  const p = new Probation(few, 2.0, 0);
  for (let i = 0; i < 49; i++) p.observe(30, true, true); // 15x slower, but fewer than 50 samples
  t.match(p.verdict(10), { kind: 'pending', why: /49 of 50 latency samples/ }, 'enough inferences, not enough latency samples');
  p.observe(30, true, true);
  t.match(p.verdict(10), { kind: 'fail', reason: /more than 3x/ }, 'at 50 samples the slow version fails');
  const fast = new Probation(few, 2.0, 0);
  for (let i = 0; i < 50; i++) fast.observe(2, true, true);
  t.equal(fast.verdict(10).kind, 'pass');
});

t.test('each rule fails the candidate with its reason and evidence', async (t) => {
  const nan = new Probation(rules, 2.0, 0);
  nan.observe(1, true, true);
  nan.observe(1, true, false);
  t.match(nan.verdict(10), { kind: 'fail', reason: /1 of 2 outputs had NaN or Infinity/, evidence: { nonFinite: 1 } });

  const slow = new Probation(rules, 2.0, 0);
  for (let i = 0; i < 60; i++) slow.observe(20, true, true);
  t.match(slow.verdict(10), { kind: 'fail', reason: /more than 3x the previous version's 2.00 ms/, evidence: { p99Ms: 20, baselineP99Ms: 2 } });

  const errors = new Probation(rules, undefined, 0);
  for (let i = 0; i < 30; i++) errors.observe(1, i % 10 !== 0, true);
  t.match(errors.verdict(10), { kind: 'fail', reason: /error rate 0.100 > 0.01/ });

  const noBaseline = new Probation(rules, undefined, 0);
  for (let i = 0; i < 60; i++) noBaseline.observe(50, true, true);
  t.equal(noBaseline.verdict(2000).kind, 'pass', 'without a previous version latency is not judged');
});

t.test('allFinite looks at float outputs only', async (t) => {
  t.ok(allFinite({ y: { data: new Float32Array([1, 2]) }, i: { data: new Int32Array([1]) } }));
  t.notOk(allFinite({ y: { data: new Float32Array([1, NaN]) } }));
  t.notOk(allFinite({ y: { data: new Float32Array([Infinity]) } }));
});

t.test('slot state and the boot counter survive reopening the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-slots-'));
  let s = new RolloutStore(dir);
  s.put({ model: 'digits', active: { version: '1.0.0', dir: '/m/1' }, candidate: { version: '2.0.0', dir: '/m/2', phase: 'probation', boots: 0, since: 5 } });
  t.same(s.countBoot().get('digits'), 1);
  s.event({ model: 'digits', version: '2.0.0', step: 'probation' });
  s.close();
  s = new RolloutStore(dir);
  t.teardown(() => s.close());
  t.same(s.countBoot().get('digits'), 2, 'the counter keeps counting across restarts');
  t.match(s.get('digits'), { active: { version: '1.0.0' }, candidate: { version: '2.0.0', boots: 2, phase: 'probation' } });
  t.match(s.events('digits'), [{ step: 'probation', version: '2.0.0' }]);
  s.put({ model: 'digits', active: { version: '2.0.0', dir: '/m/2' }, previous: { version: '1.0.0', dir: '/m/1' } });
  t.equal(s.get('digits').candidate, undefined, 'committing clears the candidate');
  t.equal(s.countBoot().size, 0, 'no candidate: nothing to count');
});
