// One loaded version of a model: its package, its backend, and whether it has warmed up.
// A version is disposed only once no request is running on it, so a hot swap never pulls
// a session out from under a request.
import type { ModelPackage } from '../models/package.js';
import { allocate } from '../tensor/json.js';
import type { Backend, TensorMap } from './backend.js';
import type { BackendChoice } from './choose.js';

export class ModelVersion {
  readonly pkg: ModelPackage;
  readonly backend: Backend;
  readonly choice: BackendChoice;
  readonly loadedAt = Date.now();
  warmedUpAt: number | undefined;
  warmupMs: number | undefined;
  #inflight = 0;
  #disposed: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(pkg: ModelPackage, backend: Backend, choice: BackendChoice) {
    this.pkg = pkg;
    this.backend = backend;
    this.choice = choice;
  }

  get version(): string {
    return this.pkg.manifest.version;
  }

  /** Runs `runs` inferences on zeros at batch 1 (every symbolic dimension 1). */
  async warmUp(runs: number): Promise<void> {
    const inputs: TensorMap = {};
    for (const s of this.pkg.manifest.inputs) {
      const shape = s.shape.map((d) => (typeof d === 'number' ? d : 1));
      inputs[s.name] = { dtype: s.dtype, shape, data: allocate(s.dtype, shape.reduce((a, b) => a * b, 1)) };
    }
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const out = await this.run(inputs);
      for (const o of this.pkg.manifest.outputs) {
        if (!out[o.name]) throw new Error(`warm-up: the backend returned no output "${o.name}"`);
      }
    }
    this.warmupMs = performance.now() - t0;
    this.warmedUpAt = Date.now();
  }

  async run(inputs: TensorMap): Promise<TensorMap> {
    if (this.#disposed) throw new Error(`version ${this.version} has been unloaded`);
    this.#inflight++;
    try {
      return await this.backend.run(inputs);
    } finally {
      this.#inflight--;
      if (this.#inflight === 0) this.#drained?.();
    }
  }

  /** Unloads once the requests running on it have finished. Idempotent. */
  dispose(): Promise<void> {
    this.#disposed ??= (async () => {
      if (this.#inflight > 0) await new Promise<void>((r) => (this.#drained = r));
      await this.backend.dispose();
    })();
    return this.#disposed;
  }

  info(): Record<string, unknown> {
    const m = this.pkg.manifest;
    return {
      version: m.version,
      package: this.pkg.dir,
      digest: this.pkg.digest,
      backend: this.choice.chosen,
      backendChoice: this.choice,
      backendDetails: this.backend.describe(),
      quantization: m.quantization.precision,
      evaluation: m.evaluation,
      signature: this.pkg.signature,
      loadedAt: new Date(this.loadedAt).toISOString(),
      warm: this.warmedUpAt !== undefined,
      warmupMs: this.warmupMs === undefined ? undefined : Math.round(this.warmupMs * 100) / 100,
    };
  }
}
