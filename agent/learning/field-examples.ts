// Field examples and feedback on the device (issue 21, docs/learning.md). Every served answer
// is remembered for a short window (id, model, version, top-1; its inputs only for a model with
// a capture policy). A model's capture policy keeps an inference's inputs and outputs in the
// telemetry buffer (stream "examples", the lowest priority: evicted before anything else, never
// an alert) when its confidence is low, when the shadow candidate disagreed, while a drift
// alert is active, or at random; within bytes per UTC day and per example. Feedback names an
// answer by id: its label goes to stream "feedback" with the prediction (field accuracy per
// version needs no input at all), and an answer not kept yet is kept then, if its model has a
// policy and the answer is still in the window.
import type { CaptureConfig } from '../config/schema.js';
import { Errors } from '../errors.js';
import type { Tensor, TensorMap } from '../runtime/backend.js';
import type { InferenceEvent } from '../runtime/inference-events.js';
import type { Prediction } from '../runtime/scores.js';
import type { ShadowComparison } from '../runtime/shadow.js';
import type { FieldScores } from './field-accuracy.js';

export const EXAMPLES_STREAM = 'examples';
export const FEEDBACK_STREAM = 'feedback';
export type CaptureReason = 'low-confidence' | 'shadow-disagreement' | 'drift-alert' | 'random' | 'feedback';
export type Label = number | string;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface FieldExamplesOptions {
  /** Capture policy per model name; a model not in the map keeps no inputs. */
  policies: Map<string, CaptureConfig>;
  /** The telemetry buffer's record(). */
  record: (stream: string, payload: unknown) => unknown;
  windowSeconds: number;
  windowEntries: number;
  /** Bytes of inputs and outputs held in the window at most (default: unbounded). */
  maxHeldBytes?: number;
  /** Whether the model's latest drift verdict is an alert. */
  driftAlert?: (model: string) => boolean;
  /** Labelled feedback for the drift monitor's accuracy detector. */
  onLabel?: (model: string, version: string, correct: boolean) => void;
  /** Field accuracy per version: the answering version and its shadow candidate scored on each label (field-accuracy.ts). */
  scores?: FieldScores;
  now?: () => number;
  random?: () => number;
}

interface Answer {
  id: string;
  model: string;
  version: string;
  at: number;
  predictions?: Prediction[];
  classes?: number;
  labels?: string[];
  /** Held only for a model with a capture policy, until the answer leaves the window. */
  inputs?: TensorMap;
  outputs?: TensorMap;
  heldBytes: number;
  kept: boolean;
  labelled: boolean;
  /** The label's class index per row, once labelled (a shadow result may come after the label). */
  labelIndices?: number[];
  /** The shadow candidate's top-1 per row for this answer. */
  shadow?: { version: string; top1: number[] };
  /** The shadow prediction was scored against the label (once). */
  shadowScored?: boolean;
}

export interface CaptureStats {
  kept: Record<CaptureReason, number>;
  /** Bytes of the examples kept today (UTC), per model. */
  bytesToday: Record<string, number>;
  day: string;
  refused: { dayBudget: number; tooLarge: number; recordFailed: number };
  feedback: { accepted: number; withExample: number };
  window: number;
  /** Bytes of inputs and outputs held in memory for answers in the window. */
  heldBytes: number;
}

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function tensorRecord(t: Tensor): { dtype: string; shape: number[]; base64: string } {
  return { dtype: t.dtype, shape: [...t.shape], base64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') };
}

const tensorsRecord = (m: TensorMap) => Object.fromEntries(Object.entries(m).map(([k, t]) => [k, tensorRecord(t)]));
const tensorBytes = (m: TensorMap | undefined) => Object.values(m ?? {}).reduce((s, t) => s + t.data.byteLength, 0);

export class FieldExamples {
  readonly #o: FieldExamplesOptions;
  readonly #window = new Map<string, Answer>();
  /** Kept answers that left the window: feedback can still label them (no inputs held). */
  readonly #keptEarlier = new Map<string, Answer>();
  readonly #now: () => number;
  readonly #random: () => number;
  readonly stats: CaptureStats;

  constructor(o: FieldExamplesOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.stats = {
      kept: { 'low-confidence': 0, 'shadow-disagreement': 0, 'drift-alert': 0, random: 0, feedback: 0 },
      bytesToday: {}, day: utcDay(this.#now()),
      refused: { dayBudget: 0, tooLarge: 0, recordFailed: 0 },
      feedback: { accepted: 0, withExample: 0 },
      window: 0,
      heldBytes: 0,
    };
  }

  /** Every served inference (ModelRuntime.onInference). */
  observe(e: InferenceEvent): void {
    if (!e.ok || !e.id || !e.outputs) return;
    this.#expire();
    const policy = this.#o.policies.get(e.model);
    const post = e.postprocessing;
    const classOut = post?.output ? e.outputs[post.output] : undefined;
    const a: Answer = {
      id: e.id, model: e.model, version: e.version, at: this.#now(), predictions: e.predictions,
      classes: classOut ? classOut.shape[classOut.shape.length - 1] : undefined, labels: post?.labels,
      kept: false, labelled: false, heldBytes: 0,
    };
    // Inputs are held only where they could be kept: a policy, and small enough for it.
    const size = tensorBytes(e.inputs) + tensorBytes(e.outputs);
    const fits = policy !== undefined && size <= policy.maxBytesPerExample;
    if (fits) {
      a.inputs = e.inputs;
      a.outputs = e.outputs;
      a.heldBytes = size;
      this.stats.heldBytes += size;
    }
    this.#window.set(a.id, a);
    while (this.#window.size > this.#o.windowEntries) this.#forget(this.#window.keys().next().value!);
    this.stats.window = this.#window.size;
    this.#releaseOldest();
    if (!policy) return;
    const reason = this.#reason(policy, a);
    if (!reason) return;
    if (fits) this.#keep(a, policy, reason);
    else this.stats.refused.tooLarge++;
  }

  /** A shadow comparison of answer `id` (ModelRuntime.onShadowResult). */
  shadowResult(c: ShadowComparison, id: string | undefined): void {
    const a = id ? this.#window.get(id) : undefined;
    if (a && !a.shadowScored && c.candidateTop1 && c.candidateTop1.length === (a.predictions?.length ?? -1)) {
      a.shadow = { version: c.candidate, top1: c.candidateTop1 };
      // Labelled before the shadow run finished: the candidate is scored now.
      if (a.labelIndices) this.#scoreShadow(a, a.labelIndices);
    }
    const policy = this.#o.policies.get(c.model);
    if (!a || a.kept || !policy?.shadowDisagreement || c.top1Agreement >= 1) return;
    this.#keep(a, policy, 'shadow-disagreement');
  }

  #reason(p: CaptureConfig, a: Answer): CaptureReason | undefined {
    if (p.confidenceBelow > 0 && a.predictions?.some((x) => x.score < p.confidenceBelow)) return 'low-confidence';
    if (p.whileDrifting && this.#o.driftAlert?.(a.model)) return 'drift-alert';
    if (p.randomRate > 0 && this.#random() < p.randomRate) return 'random';
    return undefined;
  }

  /** Records the example if the day's budget and the per-example bound allow; true when kept. */
  #keep(a: Answer, p: CaptureConfig, reason: CaptureReason, label?: Label | Label[]): boolean {
    if (!a.inputs || !a.outputs) return false;
    const payload = {
      id: a.id, model: a.model, version: a.version, at: new Date(a.at).toISOString(), reason,
      inputs: tensorsRecord(a.inputs), outputs: tensorsRecord(a.outputs),
      ...(a.predictions ? { predictions: a.predictions } : {}),
      ...(label !== undefined ? { label } : {}),
    };
    const bytes = Buffer.byteLength(JSON.stringify(payload));
    const day = utcDay(this.#now());
    if (day !== this.stats.day) {
      this.stats.day = day;
      this.stats.bytesToday = {};
    }
    const today = this.stats.bytesToday[a.model] ?? 0;
    if (bytes > p.maxBytesPerExample) {
      this.stats.refused.tooLarge++;
      return false;
    }
    if (today + bytes > p.maxBytesPerDay) {
      this.stats.refused.dayBudget++;
      return false;
    }
    try {
      this.#o.record(EXAMPLES_STREAM, payload);
    } catch {
      // A full or closed buffer loses the example, never the inference.
      this.stats.refused.recordFailed++;
      return false;
    }
    this.stats.bytesToday[a.model] = today + bytes;
    this.stats.kept[reason]++;
    a.kept = true;
    // The example is in the buffer now: the window needs its tensors no more.
    this.#release(a);
    return true;
  }

  /** POST /v1/models/:name/feedback, checked here: nothing is stored unless all is well. */
  feedback(model: string, body: unknown): { id: string; example: boolean; correct: boolean | null } {
    const bad = (why: string) => Errors.FEEDBACK_INVALID(model, why);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object {"id": ANSWER_ID, "label": LABEL}');
    const b = body as Record<string, unknown>;
    const extra = Object.keys(b).filter((k) => k !== 'id' && k !== 'label');
    if (extra.length) throw bad(`unknown key "${extra[0]}"; send {"id": ANSWER_ID, "label": LABEL}`);
    if (typeof b.id !== 'string' || !ID.test(b.id)) throw bad(`"id" must be the "id" of an inference answer (a UUID such as 0f8e...-...), got ${JSON.stringify(b.id)?.slice(0, 60)}`);
    this.#expire();
    const a = this.#window.get(b.id) ?? this.#keptEarlier.get(b.id);
    if (!a || a.model !== model) throw Errors.ANSWER_NOT_FOUND(model, b.id, this.#o.windowSeconds);
    const label = this.#checkLabel(model, a, b.label);
    if (a.labelled) throw Errors.FEEDBACK_DUPLICATE(model, a.id);
    const indices = (Array.isArray(label) ? label : [label]).map((l) => (typeof l === 'string' ? a.labels!.indexOf(l) : l));
    const correct = a.predictions ? a.predictions.every((p, i) => p.index === indices[i]) : null;
    let example = a.kept;
    const policy = this.#o.policies.get(model);
    if (!a.kept && policy) example = this.#keep(a, policy, 'feedback', label);
    this.#o.record(FEEDBACK_STREAM, {
      id: a.id, model, version: a.version, at: new Date(this.#now()).toISOString(), answeredAt: new Date(a.at).toISOString(),
      label, predictions: a.predictions ?? null, correct, example,
    });
    a.labelled = true;
    a.labelIndices = indices;
    if (a.predictions) {
      this.#o.scores?.answered(model, a.version, indices.length, a.predictions.filter((p, i) => p.index === indices[i]).length);
      if (a.shadow) this.#scoreShadow(a, indices);
    }
    this.#release(a);
    this.stats.feedback.accepted++;
    if (example) this.stats.feedback.withExample++;
    if (correct !== null) {
      try {
        this.#o.onLabel?.(model, a.version, correct);
      } catch {
        // No drift monitoring for this version: the label is stored all the same.
      }
    }
    return { id: a.id, example, correct };
  }

  /** The shadow candidate's prediction for a labelled answer, scored beside the version that answered. */
  #scoreShadow(a: Answer, indices: number[]): void {
    const s = a.shadow!, p = a.predictions!;
    const shadowCorrect = s.top1.filter((c, i) => c === indices[i]).length;
    this.#o.scores?.answered(a.model, s.version, indices.length, shadowCorrect);
    this.#o.scores?.paired(a.model, a.version, s.version, indices.length, p.filter((x, i) => x.index === indices[i]).length, shadowCorrect);
    a.shadow = undefined;
    a.shadowScored = true;
  }

  #checkLabel(model: string, a: Answer, label: unknown): Label | Label[] {
    const rows = a.predictions?.length ?? 1;
    const one = (l: unknown, where: string): Label => {
      if (typeof l === 'string') {
        if (!a.labels) throw Errors.FEEDBACK_INVALID(model, `${where} is the string ${JSON.stringify(l).slice(0, 60)}, but ${a.model}@${a.version} has no class names; send the class index (an integer)`);
        if (!a.labels.includes(l)) throw Errors.FEEDBACK_INVALID(model, `${where} ${JSON.stringify(l).slice(0, 60)} is not one of ${a.model}@${a.version}'s classes (${a.labels.slice(0, 20).join(', ')})`);
        return l;
      }
      if (typeof l === 'number' && Number.isInteger(l) && l >= 0 && (a.classes === undefined || l < a.classes)) return l;
      const range = a.classes !== undefined ? `0..${a.classes - 1}` : 'a whole number >= 0';
      throw Errors.FEEDBACK_INVALID(model, `${where} must be a class index (${range})${a.labels ? ' or a class name' : ''}, got ${JSON.stringify(l)?.slice(0, 60) ?? 'nothing'}`);
    };
    if (Array.isArray(label)) {
      if (label.length !== rows) throw Errors.FEEDBACK_INVALID(model, `"label" has ${label.length} entries, but answer ${a.id} has ${rows} rows; send one label per row (or one label for a single row)`);
      return label.map((l, i) => one(l, `"label"[${i}]`));
    }
    if (rows !== 1) throw Errors.FEEDBACK_INVALID(model, `answer ${a.id} has ${rows} rows; send "label" as an array, one per row`);
    return one(label, '"label"');
  }

  #expire(): void {
    const old = this.#now() - this.#o.windowSeconds * 1000;
    for (const [id, a] of this.#window) {
      if (a.at >= old) break;
      this.#forget(id);
    }
    this.stats.window = this.#window.size;
  }

  /** Over the memory bound: the oldest answers let go of their tensors (they can still be labelled). */
  #releaseOldest(): void {
    const max = this.#o.maxHeldBytes ?? Infinity;
    for (const a of this.#window.values()) {
      if (this.stats.heldBytes <= max) break;
      this.#release(a);
    }
  }

  #release(a: Answer): void {
    this.stats.heldBytes -= a.heldBytes;
    a.heldBytes = 0;
    a.inputs = undefined;
    a.outputs = undefined;
  }

  #forget(id: string): void {
    const a = this.#window.get(id)!;
    this.#window.delete(id);
    this.#release(a);
    if (a.kept && !a.labelled) {
      // The example is in the buffer: its label may still come. Its inputs are not held any more.
      this.#keptEarlier.set(id, a);
      while (this.#keptEarlier.size > this.#o.windowEntries) this.#keptEarlier.delete(this.#keptEarlier.keys().next().value!);
    }
  }
}
