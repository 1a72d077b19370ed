// Issue 21 item 2, `edge-fleet dataset` with the installed bin on a SQLite controller database
// filled as the controller fills it (ingestBatch of the "examples" and "feedback" streams):
// - the split is a hash of the example id: the same id lands in the same split in two exports
//   (the second with more examples), the splits are disjoint, and about 80/10/10 over 3000 ids;
// - the export is read back by `edge-model eval` on a 3-class identity model (its output is its
//   input), so the accuracy per split is known here in advance: the inputs are the one-hot
//   rows of a "prediction", the labels agree with it on chosen ids only;
// - bad input: an unknown model or version, a bad --since, a used --out, nothing labelled.
import t from 'tap';
// Two builds of dist/ at most (shared with the other CLI tests) and a dozen CLI runs.
t.setTimeout(180_000);
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo } from '../agent/onnx/model.js';
import { readNpy } from '../agent/tensor/npy.js';
import { exportDataset, joinRecords, splitOf, SPLITS } from '../controller/dataset.js';
import { parseSplit } from '../controller/dataset-cli.js';
import { SqliteControllerStore } from '../controller/store/sqlite.js';
import { edgeModel, ensureBuilt, ROOT, scratchDir } from './helpers/edge-model-cli.js';

ensureBuilt();
const dir = scratchDir(t);
const fleet = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/edge-fleet.js'), 'dataset', ...args], { encoding: 'utf8', timeout: 60_000 });
const uuid = (n: number) => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;

t.test('the split: deterministic by id, about as configured', async (t) => {
  const ids = Array.from({ length: 3000 }, (_, i) => uuid(i));
  const a = ids.map((id) => splitOf(id));
  t.same(ids.map((id) => splitOf(id)), a, 'the same ids, the same splits');
  const share = (s: string) => a.filter((x) => x === s).length / ids.length;
  t.ok(Math.abs(share('train') - 0.8) < 0.03, `train ${share('train')}`);
  t.ok(Math.abs(share('validation') - 0.1) < 0.02, `validation ${share('validation')}`);
  t.ok(Math.abs(share('test') - 0.1) < 0.02, `test ${share('test')}`);
  t.same(ids.map((id) => splitOf(id, { train: 0.5, validation: 0.5 })).filter((s) => s === 'test'), [], 'no test share, no test examples');
});

// Example n: predicted class n % 3 (its input is that one-hot row); labelled when n % 4 != 3,
// with the predicted class unless n % 5 == 0 (then the next class: a wrong prediction).
const predicted = (n: number) => n % 3;
const labelOf = (n: number) => (n % 5 === 0 ? (predicted(n) + 1) % 3 : predicted(n));
const labelled = (n: number) => n % 4 !== 3;

async function fill(db: string, from: number, to: number): Promise<void> {
  const s = SqliteControllerStore.open(db);
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  const examples = [];
  const feedback = [];
  for (let n = from; n < to; n++) {
    const row = new Float32Array(3);
    row[predicted(n)] = 1;
    const x = { dtype: 'float32', shape: [1, 3], base64: Buffer.from(row.buffer).toString('base64') };
    examples.push({ seq: n + 1, ts: t0 + n * 1000, payload: { id: uuid(n), model: 'id3', version: '1.0.0', reason: 'random', inputs: { x }, outputs: { y: x }, predictions: [{ index: predicted(n), score: 1 }] } });
    if (labelled(n)) feedback.push({ seq: n + 1, ts: t0 + n * 1000 + 500, payload: { id: uuid(n), model: 'id3', version: '1.0.0', label: labelOf(n), predictions: [{ index: predicted(n), score: 1 }], correct: labelOf(n) === predicted(n), example: true } });
  }
  await s.ingestBatch('dev-a', 'examples', examples.filter((_, i) => i % 2 === 0));
  await s.ingestBatch('dev-b', 'examples', examples.filter((_, i) => i % 2 === 1));
  await s.ingestBatch('dev-a', 'feedback', feedback);
  await s.close();
}

/** split -> ids, from the file names (NNNNNN-ID.npy). */
function exported(out: string): Record<string, string[]> {
  const r: Record<string, string[]> = {};
  for (const s of [...SPLITS, 'unlabelled']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(out, s)).filter((f) => f.endsWith('.npy')).sort();
    } catch {
      // an empty split has no folder
    }
    r[s] = names.map((f) => f.slice(7, -4));
  }
  return r;
}

t.test('export, export again with more, read back by edge-model eval', async (t) => {
  const db = join(dir, 'fleet.db');
  await fill(db, 0, 400);
  const out1 = join(dir, 'out1');
  const r1 = fleet('id3', '--version', '1.0.0', '--out', out1, '--db', db, '--json');
  t.equal(r1.status, 0, r1.stderr);
  const counts1 = JSON.parse(r1.stdout).counts as { split: string; examples: number; labels: number; perClass: Record<string, number> }[];
  const e1 = exported(out1);
  const all = Array.from({ length: 400 }, (_, n) => n);
  for (const s of SPLITS) {
    const want = all.filter((n) => labelled(n) && splitOf(uuid(n)) === s);
    t.same(e1[s], want.map(uuid).sort(), `${s}: the labelled examples whose id hashes to it`);
    const c = counts1.find((x) => x.split === s)!;
    t.equal(c.examples, want.length, `${s}: count printed`);
    const perClass: Record<string, number> = {};
    for (const n of want) perClass[labelOf(n)] = (perClass[labelOf(n)] ?? 0) + 1;
    t.same(c.perClass, perClass, `${s}: per class`);
  }
  t.same(e1.unlabelled, all.filter((n) => !labelled(n)).map(uuid).sort(), 'the unlabelled examples apart');
  const seen = Object.values(e1).flat();
  t.equal(new Set(seen).size, seen.length, 'no example in two splits');
  t.ok(e1.train!.length > e1.validation!.length && e1.validation!.length > 10 && e1.test!.length > 10, 'every split has examples');

  const text = fleet('id3', '--version', '1.0.0', '--out', join(dir, 'out-text'), '--db', db);
  t.match(text.stdout, /id3@1\.0\.0: 400 examples written to/, 'the text summary');
  t.match(text.stdout, /SPLIT\s+EXAMPLES\s+LABELS\s+PER CLASS\ntrain\s+\d+\s+\d+\s+0:\d+ 1:\d+ 2:\d+/, 'a table per split and class');

  // The identity model predicts the input's one-hot class: accuracy is the share of labels that agree.
  const model = join(dir, 'id3.onnx');
  writeFileSync(model, encodeModel(makeModel({
    name: 'g', node: [makeNode('Gemm', ['x', 'W', 'b'], ['y'])],
    initializer: [makeTensor('W', [3, 3], Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1])), makeTensor('b', [3], new Float32Array(3))],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 3])], output: [makeValueInfo('y', DataType.FLOAT, ['N', 3])],
  })));
  for (const s of ['train', 'test']) {
    const first = readNpy(join(out1, s, readdirSync(join(out1, s)).filter((f) => f.endsWith('.npy')).sort()[0]!));
    t.same([first.dtype, first.shape], ['float32', [1, 3]], `${s}: inputs as the device saw them`);
    const ns = all.filter((n) => labelled(n) && splitOf(uuid(n)) === s).sort((a, b) => (uuid(a) < uuid(b) ? -1 : 1));
    t.same(readFileSync(join(out1, s, 'labels.txt'), 'utf8').trim().split('\n').map(Number), ns.map(labelOf), `${s}: labels in file-name order`);
    const ev = edgeModel(['eval', model, '--data', join(out1, s), '--labels', join(out1, s, 'labels.txt'), '--metric', 'accuracy', '--json']);
    t.equal(ev.code, 0, ev.stderr);
    const want = ns.filter((n) => labelOf(n) === predicted(n)).length / ns.length;
    const got = JSON.parse(ev.stdout) as { value: number; samples: number };
    t.equal(got.samples, ns.length, `${s}: eval reads every example`);
    t.ok(Math.abs(got.value - want) < 1e-9, `${s}: accuracy ${got.value} = ${want}`);
  }

  // More examples arrive: every earlier example stays in its split.
  await fill(db, 400, 700);
  const out2 = join(dir, 'out2');
  const r2 = fleet('id3', '--version', '1.0.0', '--labelled', '--out', out2, '--db', db);
  t.equal(r2.status, 0, r2.stderr);
  const e2 = exported(out2);
  for (const s of SPLITS) {
    t.same(e2[s]!.filter((id) => e1[s]!.includes(id)), e1[s], `${s}: the first export's examples again`);
    for (const other of SPLITS.filter((o) => o !== s)) t.same(e2[s]!.filter((id) => e1[other]!.includes(id)), [], `${s}: none from ${other}`);
  }
  t.same(e2.unlabelled, [], '--labelled leaves the unlabelled out');

  const since = fleet('id3', '--version', '1.0.0', '--since', new Date(Date.parse('2026-12-01T00:00:00Z') + 600_000).toISOString(), '--devices', 'dev-b', '--out', join(dir, 'out3'), '--db', db, '--json');
  t.equal(since.status, 0, since.stderr);
  const e3 = Object.values(exported(join(dir, 'out3'))).flat().sort();
  t.same(e3, Array.from({ length: 100 }, (_, i) => 600 + i).filter((n) => n % 2 === 1).map(uuid).sort(), '--since and --devices');
});

t.test('bad input: a clear message, nothing written', async (t) => {
  const db = join(dir, 'bad.db');
  await fill(db, 0, 20);
  const used = join(dir, 'used');
  mkdirSync(used);
  writeFileSync(join(used, 'x'), '');
  const cases: [string[], RegExp][] = [
    [['nope', '--version', '1.0.0'], /no examples or labels of model nope arrived; models with examples or labels: id3/],
    [['id3', '--version', '9.9.9'], /no examples or labels of id3 version 9\.9\.9 arrived; versions seen: 1\.0\.0/],
    [['id3', '--version', '1.0.0', '--since', 'yesterday'], /--since "yesterday" is not an ISO 8601 time/],
    [['id3', '--version', '1.0.0', '--since', '2030-01-01'], /id3@1\.0\.0: no examples or labels since 2030-01-01/],
    [['id3', '--version', '1.0.0', '--devices', 'dev-z'], /no examples or labels from dev-z/],
  ];
  for (const [args, msg] of cases) {
    const out = join(dir, `bad-${args.join('-').replace(/[^a-z0-9.-]/gi, '')}`);
    const r = fleet(...args, '--out', out, '--db', db);
    t.equal(r.status, 1, `${args.join(' ')}: exit 1`);
    t.match(r.stderr, msg, `${args.join(' ')}: the message`);
    t.throws(() => readdirSync(out), `${args.join(' ')}: nothing written`);
  }
  const r = fleet('id3', '--version', '1.0.0', '--out', used, '--db', db);
  t.equal(r.status, 1);
  t.match(r.stderr, /--out .*used is not empty; give a new or empty folder/, 'a used --out');
  t.same(readdirSync(used), ['x'], 'left as it was');
  const nodb = fleet('id3', '--version', '1.0.0', '--out', join(dir, 'nodb'), '--db', join(dir, 'none.db'));
  t.match(nodb.stderr, /no controller database at/, 'no database');
});

t.test('class names map to indices through the predictions; what cannot be exported is refused', async (t) => {
  const x = { dtype: 'float32', shape: [1, 2], base64: Buffer.from(new Float32Array([1, 2]).buffer).toString('base64') };
  const row = (stream: string, seq: number, payload: Record<string, unknown>) => ({ deviceId: 'd', stream, seq, ts: seq, receivedAt: seq, payload: { model: 'm', version: '1', ...payload } });
  const rows = [
    row('examples', 1, { id: 'a', inputs: { x }, predictions: [{ index: 2, label: 'cat', score: 0.4 }] }),
    row('examples', 2, { id: 'b', inputs: { x }, label: 'cat' }),
    row('feedback', 1, { id: 'a', label: 'cat' }),
  ];
  t.same(joinRecords(rows, { model: 'm', version: '1' }).map((e) => [e.id, e.labels]), [['a', [2]], ['b', [2]]], 'a name seen in a prediction; a label kept with the example');
  t.throws(() => joinRecords([...rows, row('feedback', 2, { id: 'b', label: 'dog' })].reverse(), { model: 'm', version: '1' }), { message: /label "dog" is neither a class index nor a class name seen/ }, 'an unknown class name');
  const two = [row('examples', 1, { id: 'c', inputs: { x, y: x } })];
  const out = join(dir, 'two-inputs');
  t.throws(() => exportDataset(joinRecords(two, { model: 'm', version: '1' }), out), { message: /has 2 inputs \(x, y\); the export writes single-input models/ });
  t.throws(() => readdirSync(out), 'nothing written');
  const odd = [row('examples', 1, { id: 'e', inputs: { x: { ...x, dtype: 'float16' } } })];
  t.throws(() => exportDataset(joinRecords(odd, { model: 'm', version: '1' }), join(dir, 'f16')), { message: /input dtype float16 has no \.npy form here/ });
});

t.test('--split', async (t) => {
  t.same(parseSplit('70,20,10'), { train: 0.7, validation: 0.2 });
  t.same(parseSplit('100,0,0'), { train: 1, validation: 0 });
  for (const bad of ['80,10', '80,10,20', 'a,b,c', '80.5,9.5,10', '-10,60,50']) t.throws(() => parseSplit(bad), { message: /expected three whole percentages/ }, bad);
  const db = join(dir, 'split.db');
  await fill(db, 0, 200);
  const r = fleet('id3', '--version', '1.0.0', '--split', '50,0,50', '--labelled', '--out', join(dir, 'split-out'), '--db', db, '--json');
  t.equal(r.status, 0, r.stderr);
  const e = exported(join(dir, 'split-out'));
  t.same(e.validation, [], 'no validation share, no validation examples');
  t.same(e.test, Array.from({ length: 200 }, (_, n) => n).filter((n) => labelled(n) && splitOf(uuid(n), { train: 0.5, validation: 0 }) === 'test').map(uuid).sort(), 'test: the ids past 50 %');
  const bad = fleet('id3', '--version', '1.0.0', '--split', '90,20,0', '--out', join(dir, 'split-bad'), '--db', db);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /--split "90,20,0": expected three whole percentages/);
});
