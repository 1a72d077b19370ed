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

const RECENT = 512;

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
  /** Latencies of the last requests served (ms), for the p50/p99 shown in /v1/models. */
  readonly recentMs: number[] = [];
  /** Activations, rollbacks and shadow changes of this slot run one after another. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(name: string, backend: BackendRequest, queue: InferenceQueue) {
    this.name = name;
    this.backend = backend;
    this.queue = queue;
  }

  noteLatency(ms: number): void {
    if (this.recentMs.length >= RECENT) this.recentMs.shift();
    this.recentMs.push(ms);
  }

  /** p50 and p99 of the recent latencies (ms), or undefined before the first request. */
  latency(): { p50Ms: number; p99Ms: number; samples: number } | undefined {
    const n = this.recentMs.length;
    if (n === 0) return undefined;
    const sorted = [...this.recentMs].sort((a, b) => a - b);
    const at = (p: number): number => Math.round(sorted[Math.min(n - 1, Math.ceil(p * n) - 1)]! * 1000) / 1000;
    return { p50Ms: at(0.5), p99Ms: at(0.99), samples: n };
  }

  serialize<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(job, job);
    this.#chain = next.catch(() => undefined);
    return next;
  }
}
