// Where one served model lives: the active version (serving), the previous one (kept loaded
// for an instant rollback), an optional shadow or A/B candidate, its queue, and the last load error.
import type { BackendRequest } from './choose.js';
import type { ModelVersion } from './model-version.js';
import type { InferenceQueue } from './queue.js';
import type { ShadowRun } from './shadow.js';

export interface LoadFailure {
  package: string;
  message: string;
  code: string;
  at: string;
}

export class ModelSlot {
  readonly name: string;
  readonly backend: BackendRequest;
  readonly queue: InferenceQueue;
  active: ModelVersion | undefined;
  previous: ModelVersion | undefined;
  shadow: ShadowRun | undefined;
  /** A/B: a candidate that serves this share of requests (its answers are returned). */
  ab: { version: ModelVersion; fraction: number; served: { a: number; b: number } } | undefined;
  /** The package being loaded right now (a hot swap in progress). */
  loading: string | undefined;
  lastError: LoadFailure | undefined;
  /** Activations, rollbacks and shadow changes of this slot run one after another. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(name: string, backend: BackendRequest, queue: InferenceQueue) {
    this.name = name;
    this.backend = backend;
    this.queue = queue;
  }

  serialize<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(job, job);
    this.#chain = next.catch(() => undefined);
    return next;
  }
}
