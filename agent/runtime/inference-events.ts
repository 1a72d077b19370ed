// Who hears about inferences: the listeners of every single-model inference (rollout
// probation, drift, fleet samples), of every shadow comparison (the rollout gate), and the
// telemetry sink shadow comparisons are recorded into.
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Manifest } from '../models/manifest.js';
import type { BackendKind, TensorMap } from './backend.js';
import type { Prediction } from './scores.js';
import type { RecordFn, ShadowComparison } from './shadow.js';

/** One served (or failed) inference of a single model, for the rollout probation and drift. */
export interface InferenceEvent {
  /** The id the answer carries (feedback names it); absent for a failed inference. */
  id?: string;
  model: string;
  version: string;
  backend: BackendKind;
  inputs: TensorMap;
  /** Undefined when the backend failed. */
  outputs?: TensorMap;
  latencyMs: number;
  ok: boolean;
  /** Top-1 per batch row, as the manifest's postprocessing reads the output (served inferences). */
  predictions?: Prediction[];
  /** The version's postprocessing (which output holds the classes, their labels). */
  postprocessing?: Manifest['postprocessing'];
}

export class InferenceListeners {
  /** Where shadow comparisons go (the telemetry buffer's record()). */
  record: RecordFn | undefined;
  readonly #log: Logger;
  readonly #inference: ((e: InferenceEvent) => void)[] = [];
  readonly #shadow: ((c: ShadowComparison, id?: string) => void)[] = [];

  constructor(log: Logger, record: RecordFn | undefined) {
    this.#log = log;
    this.record = record;
  }

  onInference(fn: (e: InferenceEvent) => void): void {
    this.#inference.push(fn);
  }

  /** `id` is the answer the comparison mirrored (field examples keep a disagreement). */
  onShadowResult(fn: (c: ShadowComparison, id?: string) => void): void {
    this.#shadow.push(fn);
  }

  /** Whether anyone listens to inferences (a served one's event is then built). */
  get listening(): boolean {
    return this.#inference.length > 0;
  }

  /** A listener that throws is logged; the inference it heard about is not affected. */
  inference(e: InferenceEvent): void {
    for (const fn of this.#inference) {
      try {
        fn(e);
      } catch (err) {
        this.#log.warn({ model: e.model, err: describe(err) }, 'inference listener failed');
      }
    }
  }

  shadowResult(c: ShadowComparison, id?: string): void {
    for (const fn of this.#shadow) fn(c, id);
  }
}
