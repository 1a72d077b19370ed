// `npm start -- --demo learning` as a user runs it: the script in a child process (embedded
// broker, controller with its SQLite database, three agents, ONNX Runtime and the native int8
// engine, the real fine-tuning and quantization), to its exit. The story it prints and the
// figures of its --json summary must agree, and they must tell a loop that closed: the drift
// alert on the shifted digits, labels at the controller and all of them in the dataset, a
// canary that the field-accuracy gate let through, and every device more accurate on the same
// shifted digits afterwards. And a demo that does not exist, or too many devices for the digits
// each gets, is refused before anything starts.
import t from 'tap';
// The whole loop: about 2 minutes on a loaded 2-core machine (fleet start, ~5,000 inferences,
// fine-tuning, quantization, a two-stage rollout); the child gets 6 minutes, the test 7.
t.setTimeout(420_000);
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root } from './helpers/agent.js';
import { killOnExit } from './helpers/cleanup.js';
import { waitFor, WaitAbort } from './helpers/wait.js';

interface Summary {
  demo: string;
  from: string;
  to: string;
  devices: { device: string; before: number; after: number; afterLabels: number }[];
  plain: { device: string; accuracy: number }[];
  drift: { verdict: string; devices: string[]; version: string };
  collected: { examples: number; labels: number };
  dataset: Record<'train' | 'validation' | 'test' | 'unlabelled', { examples: number; labels: number }>;
  finetune: { train: number; validation: number; before: number | null; after: number };
  int8: { agreement: number; testAccuracy: number; testSamples: number; published: string };
  rollout: {
    state: string; decision: string; canary: string[];
    gates: { minFieldGain?: number; minFieldLabels?: number };
    canaryField: { gain: number | null; labels: number; devices: number; candidate: { version: string }; baseline: { version: string } } | null;
  };
}

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;

t.test('npm start -- --demo learning: shift, drift alert, labels, fine-tune, canary with the field gate, better field accuracy', async (t) => {
  const home = mkdtempSync(path.join(tmpdir(), 'edge-demo-learning-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start-fleet.ts', '--demo', 'learning', '--home', home, '--json'], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EDGE_LOG_LEVEL: 'error' },
  });
  killOnExit(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code; });
  t.teardown(() => { if (exited === undefined) child.kill('SIGKILL'); });

  await waitFor(() => {
    if (exited !== undefined && exited !== 0) throw new WaitAbort(`the demo exited ${exited}:\n${stdout}\n${stderr}`);
    return exited === 0;
  }, { timeoutMs: 360_000, intervalMs: 250, what: 'the learning demo to finish' });
  t.comment(stdout.trim());
  const lines = stdout.trim().split('\n');
  const s = JSON.parse(lines.at(-1)!) as Summary;
  const story = lines.slice(0, -1).join('\n');
  t.equal(s.demo, 'learning', 'the summary line comes last');

  t.test('before the shift the model is right; after it, wrong: the drift monitor raises an alert', async (t) => {
    for (const p of s.plain) t.ok(p.accuracy >= 0.9, `${p.device}: plain digits ${pct(p.accuracy)}`);
    for (const d of s.devices) t.ok(d.before <= 0.5, `${d.device}: shifted digits before ${pct(d.before)}`);
    t.equal(s.drift.verdict, 'alert', 'the verdict is an alert');
    t.same([...s.drift.devices].sort(), s.devices.map((d) => d.device).sort(), 'every device raised the alert');
    t.match(story, new RegExp(`drift alert fired: digits@${s.from.replace(/\./g, '\\.')}, verdict "alert" from ${s.devices.length} of ${s.devices.length} devices`), 'the story tells the alert');
  });

  t.test('examples and labels reach the controller, and the labelled ones since the shift are the dataset', async (t) => {
    t.ok(s.collected.labels > 0 && s.collected.examples >= s.collected.labels, `${s.collected.examples} examples, ${s.collected.labels} labels`);
    t.match(story, `${s.collected.examples} examples and ${s.collected.labels} labels collected at the controller`, 'the story tells the counts');
    const m = /(\d+) of (\d+) shifted field answers were labelled/.exec(story);
    t.ok(m, 'the story says how many field answers were labelled');
    const inDataset = s.dataset.train.labels + s.dataset.validation.labels + s.dataset.test.labels;
    t.equal(inDataset, Number(m![1]), 'every labelled field answer since the shift is in the dataset, once');
    t.equal(s.dataset.unlabelled.examples, 0, '--labelled: no unlabelled examples');
    t.match(story, `${s.dataset.train.examples} train, ${s.dataset.validation.examples} validation, ${s.dataset.test.examples} test examples`, 'the story tells the split');
    t.equal(s.finetune.train + s.finetune.validation, s.dataset.train.labels, 'fine-tuned on the train split (its own validation share held back)');
  });

  t.test('fine-tuned, quantized, signed and published', async (t) => {
    t.ok(s.finetune.after >= 0.8 && s.finetune.after > (s.finetune.before ?? 1) + 0.3, `validation accuracy ${pct(s.finetune.before ?? NaN)} -> ${pct(s.finetune.after)}`);
    t.match(story, `validation accuracy ${pct(s.finetune.before!)} -> ${pct(s.finetune.after)}`, 'the story tells the fine-tune result');
    t.ok(s.int8.agreement >= 0.97, `int8 agrees with fp32 on ${pct(s.int8.agreement)} of the test split`);
    t.ok(s.int8.testAccuracy >= 0.8, `int8 test accuracy ${pct(s.int8.testAccuracy)} on ${s.int8.testSamples}`);
    t.equal(s.int8.published, `digits@${s.to}`, 'the new version is published');
    t.match(story, /signed \(key [0-9a-f]+\) and published as digits@/, 'the story tells the signing key');
  });

  t.test('the canary passes the field-accuracy gate and the rollout completes', async (t) => {
    t.equal(s.rollout.decision, 'proceed', 'the gate let the canary through');
    t.equal(s.rollout.state, 'completed', 'the rollout completed');
    t.ok(s.rollout.gates.minFieldGain !== undefined && s.rollout.gates.minFieldLabels !== undefined, 'the field gate is on');
    const f = s.rollout.canaryField!;
    t.ok(f, 'the gate\'s figures for the canary');
    t.same([f.candidate.version, f.baseline.version], [s.to, s.from], 'the candidate against the version it replaces');
    t.ok(f.labels >= s.rollout.gates.minFieldLabels!, `${f.labels} labelled requests on the candidate (needs ${s.rollout.gates.minFieldLabels})`);
    t.ok(f.gain !== null && f.gain >= s.rollout.gates.minFieldGain!, `field gain ${f.gain} (needs ${s.rollout.gates.minFieldGain})`);
    t.equal(f.devices, s.rollout.canary.length, 'the canary stage only');
    t.match(story, new RegExp(`field-accuracy gate on the canary \\(${s.rollout.canary.join(', ')}\\): proceed; rollout completed`), 'the story tells the decision');
  });

  t.test('field accuracy on the same shifted digits, per device: after > before', async (t) => {
    for (const d of s.devices) {
      t.ok(d.after - d.before >= 0.3, `${d.device}: ${pct(d.before)} -> ${pct(d.after)}`);
      t.ok(d.after >= 0.8, `${d.device}: ${pct(d.after)} after`);
      t.equal(d.afterLabels, 200, `${d.device}: every one of the 200 digits answered by ${s.to}`);
      t.match(story, `${d.device} ${pct(d.before)} -> ${pct(d.after)}`, `${d.device}: the story tells before and after`);
    }
  });
});

t.test('bad input: a clear error naming what was expected, exit 64, nothing started', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--demo', 'teaching'], /argument 'teaching' is invalid\. Allowed choices are learning/],
    [['--demo', 'learning', '--devices', '9'], /--demo learning runs 1 to 8 devices \(each gets held-out digits of its own\), got --devices 9/],
  ];
  for (const [args, message] of cases) {
    const home = mkdtempSync(path.join(tmpdir(), 'edge-demo-learning-bad-'));
    t.teardown(() => rmSync(home, { recursive: true, force: true }));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/start-fleet.ts', ...args, '--home', home], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 64, `${args.join(' ')}: exit 64`);
    t.match(r.stderr, message, `${args.join(' ')}: says what was expected`);
    t.equal(r.stdout, '', `${args.join(' ')}: no fleet started`);
  }
});
