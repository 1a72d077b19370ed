// Field examples on the device (agent/learning/field-examples.ts) against a real SQLite
// telemetry buffer: off by default (labels kept with the prediction, never an input), each
// capture trigger, the bounds (bytes per example, bytes per UTC day), the lowest priority in
// the buffer (examples are evicted first, alerts never), and feedback that labels a kept
// example or keeps one still in the window.
import t, { type Test } from 'tap';
t.setTimeout(60_000);
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { CapturePolicy, type CaptureConfig } from '../agent/config/schema.js';
import { EdgeError } from '../agent/errors.js';
import { FieldExamples, type FieldExamplesOptions } from '../agent/learning/field-examples.js';
import type { InferenceEvent } from '../agent/runtime/inference-events.js';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import type { TelemetryConfig } from '../agent/telemetry/types.js';
import { mulberry32 } from '../tools/prng.js';

const policy = (p: Partial<CaptureConfig>): CaptureConfig => Value.Default(CapturePolicy, structuredClone(p)) as CaptureConfig;

function setup(t: Test, o: Partial<FieldExamplesOptions> & { telemetry?: Partial<TelemetryConfig> } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'learning-capture-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = telemetryConfig(o.telemetry ?? {});
  const buffer = new TelemetryBuffer({ dir, config });
  buffer.startSync();
  t.teardown(() => buffer.stopSync());
  let now = Date.parse('2026-03-01T10:00:00Z');
  const fx = new FieldExamples({
    policies: new Map(), windowSeconds: 60, windowEntries: 100, ...o,
    record: (stream, payload) => buffer.record(stream, payload),
    now: () => now,
  });
  const rows = (stream: string): any[] => {
    buffer.flushSync();
    const db = new Database(path.join(dir, config.file), { readonly: true });
    try {
      return (db.prepare('SELECT payload FROM records WHERE stream = ? ORDER BY seq').all(stream) as { payload: Buffer | string }[])
        .map((r) => JSON.parse(r.payload.toString()));
    } finally {
      db.close();
    }
  };
  return { fx, buffer, rows, advance: (ms: number) => { now += ms; } };
}

const rand = mulberry32(21);
/** A served digits-like inference: 784 float inputs, 10 logits, top-1 `score`. */
function event(model: string, score: number, pixels = 784): InferenceEvent {
  const logits = new Float32Array(10);
  logits[3] = 1;
  return {
    id: randomUUID(), model, version: '1.0.0', backend: 'ort', latencyMs: 1, ok: true,
    inputs: { input: { dtype: 'float32', shape: [1, pixels], data: Float32Array.from({ length: pixels }, () => rand()) } },
    outputs: { logits: { dtype: 'float32', shape: [1, 10], data: logits } },
    predictions: [{ index: 3, label: '3', score }],
    postprocessing: { output: 'logits', softmax: true, argmax: true, labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
  };
}

t.test('off by default: no input is kept, feedback keeps the label with the prediction only', async (t) => {
  const { fx, rows } = setup(t);
  const events = Array.from({ length: 50 }, (_, i) => event('digits', i % 2 ? 0.1 : 0.99));
  for (const e of events) fx.observe(e);
  t.same(rows('examples'), [], 'no example without a capture policy, even for low-confidence answers');
  const r = fx.feedback('digits', { id: events[1]!.id, label: 7 });
  t.same(r, { id: events[1]!.id, example: false, correct: false });
  t.equal(fx.feedback('digits', { id: events[2]!.id, label: '3' }).correct, true, 'a class name works as a label');
  const fb = rows('feedback');
  t.equal(fb.length, 2);
  t.same(Object.keys(fb[0]).sort(), ['answeredAt', 'at', 'correct', 'example', 'id', 'label', 'model', 'predictions', 'version']);
  t.notOk(JSON.stringify(fb).includes('base64'), 'no tensor in the feedback records');
  t.same(rows('examples'), [], 'still no example');
});

t.test('each trigger keeps an example with its reason; a confident answer is not kept', async (t) => {
  let drifting = false;
  const { fx, rows } = setup(t, {
    policies: new Map([['digits', policy({ confidenceBelow: 0.5, whileDrifting: true, shadowDisagreement: true })]]),
    driftAlert: () => drifting,
  });
  const low = event('digits', 0.3);
  const sure = event('digits', 0.95);
  fx.observe(low);
  fx.observe(sure);
  t.same(rows('examples').map((r) => [r.id, r.reason]), [[low.id, 'low-confidence']]);
  drifting = true;
  const during = event('digits', 0.95);
  fx.observe(during);
  drifting = false;
  const shadowed = event('digits', 0.95);
  fx.observe(shadowed);
  const comparison = { model: 'digits', active: '1.0.0', candidate: '1.1.0', rows: 1, meanAbsDiff: 0.2, activeLatencyMs: 1, candidateLatencyMs: 1 };
  fx.shadowResult({ ...comparison, top1Agreement: 1 }, sure.id);
  fx.shadowResult({ ...comparison, top1Agreement: 0 }, shadowed.id);
  const kept = rows('examples');
  t.same(kept.map((r) => r.reason), ['low-confidence', 'drift-alert', 'shadow-disagreement']);
  const input = Buffer.from(kept[0].inputs.input.base64, 'base64');
  t.same(new Float32Array(input.buffer, input.byteOffset, 784), low.inputs.input!.data, 'the example holds the exact input');
  t.same(kept[0].outputs.logits.shape, [1, 10]);
});

t.test('random rate; bytes per example and per UTC day bound what is kept', async (t) => {
  const { fx, rows, advance } = setup(t, {
    policies: new Map([['digits', policy({ randomRate: 1, maxBytesPerDay: 40_000, maxBytesPerExample: 8_000 })], ['big', policy({ randomRate: 1, maxBytesPerExample: 8_000 })]]),
  });
  for (let i = 0; i < 5; i++) fx.observe(event('big', 0.9, 4096));
  t.equal(fx.stats.refused.tooLarge, 5, 'an input of 16 kB is over 8 kB per example');
  for (let i = 0; i < 30; i++) fx.observe(event('digits', 0.9));
  const day1 = rows('examples');
  const bytes = day1.reduce((s, r) => s + Buffer.byteLength(JSON.stringify(r)), 0);
  t.ok(day1.length >= 8 && day1.length < 30, `${day1.length} of 30 kept on day one`);
  t.ok(bytes <= 40_000, `${bytes} bytes of examples <= 40000 per day`);
  t.ok(day1.every((r) => Buffer.byteLength(JSON.stringify(r)) <= 8_000), 'each within 8 kB');
  t.equal(fx.stats.refused.dayBudget, 30 - day1.length);
  t.equal(day1.filter((r) => r.model === 'big').length, 0);
  advance(24 * 3600 * 1000);
  fx.observe(event('digits', 0.9));
  t.equal(rows('examples').length, day1.length + 1, 'the next UTC day has a new budget');
});

t.test('examples are the lowest priority in the buffer: evicted first, alerts never', async (t) => {
  const { fx, buffer } = setup(t, {
    telemetry: { maxBytes: 256 * 1024 },
    policies: new Map([['digits', policy({ randomRate: 1, maxBytesPerDay: 100 * 1024 * 1024 })]]),
  });
  const { rows } = { rows: () => buffer.stats() };
  for (let i = 0; i < 40; i++) buffer.record('alerts', { i, text: 'x'.repeat(500) });
  for (let i = 0; i < 40; i++) buffer.record('samples', { i, text: 'y'.repeat(500) });
  for (let i = 0; i < 200; i++) fx.observe(event('digits', 0.9));
  buffer.flushSync();
  const s = rows();
  t.ok(s.streams.examples!.evicted > 0, `${s.streams.examples!.evicted} examples evicted for space`);
  t.equal(s.streams.alerts!.evicted, 0, 'no alert evicted');
  t.equal(s.streams.alerts!.depth, 40);
  t.equal(s.streams.samples!.evicted, 0, 'samples (priority 1) outlive examples (priority 0)');
});

t.test('feedback labels a kept example, keeps one in the window, and refuses bad input storing nothing', async (t) => {
  const { fx, rows, advance } = setup(t, { policies: new Map([['digits', policy({ confidenceBelow: 0.5 })]]) });
  const low = event('digits', 0.2);
  const sure = event('digits', 0.9);
  const late = event('digits', 0.9);
  fx.observe(low);
  fx.observe(sure);
  t.same(fx.feedback('digits', { id: low.id, label: 3 }), { id: low.id, example: true, correct: true }, 'labels the kept example');
  t.same(fx.feedback('digits', { id: sure.id, label: 5 }), { id: sure.id, example: true, correct: false }, 'keeps the example now');
  const ex = rows('examples');
  t.same(ex.map((r) => [r.id, r.reason, r.label]), [[low.id, 'low-confidence', undefined], [sure.id, 'feedback', 5]]);
  fx.observe(late);
  const before = [rows('examples').length, rows('feedback').length];
  const refusals: [string, unknown, number, RegExp][] = [
    ['digits', { id: low.id, label: 3 }, 409, /already labelled/],
    ['digits', { id: 'not-an-id', label: 3 }, 400, /"id" must be the "id" of an inference answer/],
    ['digits', { id: randomUUID(), label: 3 }, 404, /no answer with id/],
    ['other', { id: late.id, label: 3 }, 404, /no answer with id/],
    ['digits', { id: late.id, label: 10 }, 400, /class index \(0\.\.9\)/],
    ['digits', { id: late.id, label: 2.5 }, 400, /class index/],
    ['digits', { id: late.id, label: 'cat' }, 400, /not one of .* classes/],
    ['digits', { id: late.id, label: [1, 2] }, 400, /has 2 entries, but answer .* has 1 rows/],
    ['digits', { id: late.id }, 400, /got nothing/],
    ['digits', { id: late.id, label: 1, extra: true }, 400, /unknown key "extra"/],
    ['digits', [1], 400, /must be a JSON object/],
  ];
  for (const [model, body, status, message] of refusals) {
    try {
      fx.feedback(model, body);
      t.fail(`${JSON.stringify(body)} accepted`);
    } catch (err) {
      t.ok(err instanceof EdgeError && err.statusCode === status && message.test(err.message), `${JSON.stringify(body)}: ${status} ${(err as Error).message}`);
    }
  }
  t.same([rows('examples').length, rows('feedback').length], before, 'nothing stored by a refused feedback');
  advance(61_000);
  fx.observe(event('digits', 0.9));
  t.throws(() => fx.feedback('digits', { id: late.id, label: 1 }), /no answer with id/, 'an answer out of the window cannot be labelled');
});

t.test('the window holds inputs within maxHeldBytes: the oldest are let go, still labelled, not kept', async (t) => {
  const { fx, rows } = setup(t, { maxHeldBytes: 10 * 3176, policies: new Map([['digits', policy({})]]) });
  const events = Array.from({ length: 15 }, () => event('digits', 0.9));
  for (const e of events) fx.observe(e);
  t.equal(fx.stats.heldBytes, 10 * 3176, 'ten answers of 3176 bytes (784 inputs + 10 outputs, float32) held');
  t.same(fx.feedback('digits', { id: events[0]!.id, label: 3 }), { id: events[0]!.id, example: false, correct: true }, 'an old answer is labelled without its inputs');
  t.same(fx.feedback('digits', { id: events[14]!.id, label: 3 }), { id: events[14]!.id, example: true, correct: true }, 'a recent one is kept');
  t.same(rows('examples').map((r) => r.id), [events[14]!.id]);
});

t.test('the config: capture is off unless set, defaults filled when set, bad keys refused', async (t) => {
  const { parseConfig } = await import('../agent/config/load.js');
  const base = { deviceId: 'x', dataDir: '/tmp/unused' };
  const off = parseConfig({ ...base, models: [{ name: 'digits', package: 'p' }] });
  t.equal(off.models[0]!.capture, undefined, 'no capture key, no policy');
  t.same(off.feedback, { windowSeconds: 300, windowEntries: 1000, maxHeldBytes: 8 * 1024 * 1024 });
  const on = parseConfig({ ...base, models: [{ name: 'digits', package: 'p', capture: { randomRate: 0.01 } }] });
  t.same(on.models[0]!.capture, { confidenceBelow: 0, shadowDisagreement: false, whileDrifting: false, randomRate: 0.01, maxBytesPerDay: 1048576, maxBytesPerExample: 65536 });
  const refused: [unknown, RegExp][] = [
    [{ randomRate: 2 }, /capture\/randomRate/],
    [{ confidenceBelow: -0.1 }, /capture\/confidenceBelow/],
    [{ everything: true }, /capture/],
    [{ maxBytesPerExample: 10 }, /capture\/maxBytesPerExample/],
    [{ maxBytesPerExample: 1024 * 1024 }, /maxBytesPerExample: 1048576 is more than \/telemetry\/maxRecordBytes/],
  ];
  for (const [capture, message] of refused) {
    t.throws(() => parseConfig({ ...base, models: [{ name: 'digits', package: 'p', capture }] }), message, JSON.stringify(capture));
  }
});
