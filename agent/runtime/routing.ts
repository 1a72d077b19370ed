// How one request is answered once admitted: by the active version, or by an A/B candidate
// for the arm drawn; a served request may then be mirrored to a shadow candidate (after the
// answer, never on its path). An ensemble runs every member and fuses their answers.
import { randomUUID } from 'node:crypto';
import { EdgeError, Errors, describe } from '../errors.js';
import type { BackendKind, TensorMap } from './backend.js';
import { ENSEMBLE_OUTPUT, fuse } from './ensemble.js';
import type { InferenceListeners } from './inference-events.js';
import { inputProblem } from './inputs.js';
import type { ErrorKind } from './metrics.js';
import { predictions, type Prediction } from './scores.js';
import type { EnsembleEntry, ServedModels } from './served-models.js';

export interface InferResult {
  /** Names this answer for feedback (POST /v1/models/:name/feedback). */
  id: string;
  model: string;
  version: string;
  backend: BackendKind | 'ensemble';
  /** Time in the backend (ms), queue wait excluded. */
  latencyMs: number;
  /** Time waiting for earlier requests of the same model (ms). */
  queueMs: number;
  outputs: TensorMap;
  predictions?: Prediction[];
  members?: { model: string; version: string; backend: string }[];
}

export interface InferOptions {
  version?: string;
  abandoned?: () => boolean;
  signal?: AbortSignal;
}

export class InferenceRouting {
  readonly #served: ServedModels;
  readonly #listeners: InferenceListeners;

  constructor(served: ServedModels, listeners: InferenceListeners) {
    this.#served = served;
    this.#listeners = listeners;
  }

  /** One inference of a single model (ModelRuntime.infer has checked a pinned version). */
  async model(name: string, inputs: TensorMap, opts: InferOptions): Promise<InferResult> {
    const pinned = opts.version;
    const slot = this.#served.slots.get(name);
    if (!slot) throw this.count(name, 'not_found', this.#served.notFound(name));
    if (!slot.active) throw this.count(name, 'not_ready', this.#served.notLoaded(slot));
    const problem = inputProblem(slot.active.pkg.manifest.inputs, inputs);
    if (problem) throw this.count(name, 'bad_input', Errors.INPUT_INVALID(name, problem));
    const queued = performance.now();
    const alone = slot.queue.depth === 0;
    let started = 0;
    const { version, out, ms } = await slot.queue.run(async () => {
      started = performance.now();
      if (opts.abandoned?.()) throw Errors.DEADLINE_EXCEEDED(`model ${name}`);
      // A/B: this request's arm is drawn per request (or pinned by the caller); arm B is the candidate.
      const ab = slot.ab;
      const armB = ab !== undefined && (pinned !== undefined ? ab.version.version === pinned && slot.active?.version !== pinned : Math.random() < ab.fraction);
      if (ab) ab.served[armB ? 'b' : 'a']++;
      const version = armB ? ab!.version : slot.active;
      if (!version) throw this.#served.notLoaded(slot);
      // A swap while this request waited may have retired the pinned version.
      if (pinned !== undefined && version.version !== pinned) {
        const v = this.#served.versions(name)!;
        throw Errors.MODEL_VERSION_NOT_FOUND(name, pinned, v.serving, v.held);
      }
      // A swap while this request waited may have changed what the model accepts.
      const again = inputProblem(version.pkg.manifest.inputs, inputs);
      if (again) throw Errors.INPUT_INVALID(name, again);
      try {
        const out = await version.run(inputs);
        return { version, out, ms: performance.now() - started };
      } catch (err) {
        this.#listeners.inference({ model: name, version: version.version, backend: version.choice.chosen, inputs, latencyMs: performance.now() - started, ok: false });
        throw Errors.INFERENCE_FAILED(`${name}@${version.version}`, describe(err));
      }
    }, opts.signal).catch((err: unknown) => {
      const kind: ErrorKind = err instanceof EdgeError ? (err.statusCode === 429 ? 'overloaded' : err.statusCode === 400 ? 'bad_input' : err.statusCode === 404 ? 'not_found' : err.statusCode === 504 ? 'deadline' : 'backend') : 'backend';
      throw this.count(name, kind, err);
    });
    const metrics = this.#served.metrics;
    metrics?.latency.observe({ model: name, version: version.version, backend: version.choice.chosen }, ms / 1000);
    slot.noteLatency(ms);
    this.#served.gates.get(name)?.noteService(ms, alone);
    const id = randomUUID();
    const post = version.pkg.manifest.postprocessing;
    const top = predictions(post, out);
    if (this.#listeners.listening) this.#listeners.inference({ id, model: name, version: version.version, backend: version.choice.chosen, inputs, outputs: out, latencyMs: ms, ok: true, predictions: top, postprocessing: post });
    const shadow = slot.shadow;
    if (shadow?.take()) {
      setImmediate(() => void shadow.mirror(name, version, inputs, out, ms, this.#listeners.record, (c) => {
        this.#served.metrics?.shadowAgreement.inc({ model: name, candidate: c.candidate, agree: c.top1Agreement === 1 ? 'yes' : 'no' });
        this.#listeners.shadowResult(c, id);
      }));
    }
    return {
      id,
      model: name,
      version: version.version,
      backend: version.choice.chosen,
      latencyMs: round(ms),
      queueMs: round(started - queued),
      outputs: out,
      predictions: top,
    };
  }

  /** Runs each member through `member` (ModelRuntime.infer: the same path as a request for it), then fuses. */
  async ensemble(e: EnsembleEntry, inputs: TensorMap, member: (name: string, inputs: TensorMap) => Promise<InferResult>): Promise<InferResult> {
    const queued = performance.now();
    const alone = e.queue.depth === 0;
    let started = 0;
    const result = await e.queue.run(async () => {
      started = performance.now();
      const answers = await Promise.all(e.members.map((m) => member(m, inputs)));
      const manifests = e.members.map((m) => this.#served.slots.get(m)!.active!.pkg.manifest);
      let fused;
      try {
        const memberAnswers = answers.map((a, i) => ({ outputs: a.outputs, manifest: manifests[i]! }));
        fused = e.combiner ? await e.combiner.fuse(memberAnswers) : fuse(e.fusion, e.weights, memberAnswers);
      } catch (err) {
        throw Errors.INFERENCE_FAILED(e.name, e.combiner ? `the combiner ${e.combiner.file} failed on the members' scores: ${describe(err)}` : `members disagree in shape: ${describe(err)}`);
      }
      const labels = manifests[0]!.postprocessing?.labels;
      return { answers, fused, labels };
    }).catch((err: unknown) => {
      throw this.count(e.name, err instanceof EdgeError && err.statusCode === 429 ? 'overloaded' : err instanceof EdgeError && err.statusCode < 500 ? 'bad_input' : 'backend', err);
    });
    const ms = performance.now() - started;
    this.#served.metrics?.latency.observe({ model: e.name, version: 'ensemble', backend: 'ensemble' }, ms / 1000);
    this.#served.gates.get(e.name)?.noteService(ms, alone);
    const outputs = { [ENSEMBLE_OUTPUT]: result.fused };
    return {
      id: randomUUID(),
      model: e.name,
      version: result.answers.map((a) => `${a.model}@${a.version}`).join('+'),
      backend: 'ensemble',
      latencyMs: round(ms),
      queueMs: round(started - queued),
      outputs,
      predictions: predictions({ output: ENSEMBLE_OUTPUT, softmax: false, argmax: true, labels: result.labels }, outputs),
      members: result.answers.map((a) => ({ model: a.model, version: a.version, backend: a.backend })),
    };
  }

  /** Counts a refused or failed request by kind, and hands back the error to throw. */
  count(model: string, kind: ErrorKind, err: unknown): unknown {
    this.#served.metrics?.errors.inc({ model, kind });
    return err;
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
