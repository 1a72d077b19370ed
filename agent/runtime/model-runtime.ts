// The inference runtime component: loads the configured model packages, warms each version
// up before it serves, hot-swaps versions (the old one serves until the new one is warm),
// rolls back, queues requests per model with a bound, serves ensembles and mirrors a share
// of requests to shadow candidates. A bad package never replaces a working version.
//
// This class is the facade; the parts are: served-models.ts (slots, ensembles, admission
// gates), package-loader.ts (unpack, validate, choose a backend, warm up), version-swaps.ts
// (activate, rollback, shadow and A/B candidates), routing.ts (one request: A/B arm, shadow
// mirror, ensemble fusion), inference-events.ts (listeners) and runtime-status.ts (reports).
import type { AgentContext, Component } from '../component.js';
import { Errors } from '../errors.js';
import { holdInference } from '../faults.js';
import type { SignatureVerifier } from '../models/verify.js';
import type { IOSpec, TensorMap } from './backend.js';
import type { BackendRequest } from './choose.js';
import type { Admission } from './admission.js';
import { InferenceListeners, type InferenceEvent } from './inference-events.js';
import { RuntimeMetrics } from './metrics.js';
import { PackageLoader } from './package-loader.js';
import { InferenceRouting, type InferOptions, type InferResult } from './routing.js';
import { listServed, notReadyReason, runtimeStatus } from './runtime-status.js';
import { ServedModels } from './served-models.js';
import type { RecordFn, ShadowComparison } from './shadow.js';
import { VersionSwaps, type ABResult, type VersionSummary } from './version-swaps.js';

export type { InferenceEvent } from './inference-events.js';
export type { InferResult } from './routing.js';
export type { VersionSummary } from './version-swaps.js';
export { inputProblem } from './inputs.js';

export interface RuntimeOptions {
  /** Where shadow comparisons go (the telemetry buffer's record()). */
  record?: RecordFn;
  /** Checks each package's signature (the agent's security policy builds it). */
  verifier: SignatureVerifier;
}

export class ModelRuntime implements Component {
  readonly name = 'models';
  readonly #ctx: AgentContext;
  readonly #served: ServedModels;
  readonly #swaps: VersionSwaps;
  readonly #listeners: InferenceListeners;
  readonly #routing: InferenceRouting;
  #packageSource: ((name: string, configured: string) => string[]) | undefined;
  #onRefused: ((name: string, pkg: string, err: unknown) => void) | undefined;

  constructor(ctx: AgentContext, opts: RuntimeOptions) {
    this.#ctx = ctx;
    const cfg = ctx.config.runtime;
    this.#served = new ServedModels(cfg);
    this.#swaps = new VersionSwaps(this.#served, new PackageLoader(this.#served, cfg, ctx.config.dataDir, ctx.log, opts.verifier), ctx.log);
    this.#listeners = new InferenceListeners(ctx.log, opts.record);
    this.#routing = new InferenceRouting(this.#served, this.#listeners);
  }

  /**
   * Where each configured model's package comes from at start: an ordered list to try (the
   * rollout slots install this before the runtime starts). `onRefused` hears each one that failed.
   */
  setPackageSource(source: (name: string, configured: string) => string[], onRefused?: (name: string, pkg: string, err: unknown) => void): void {
    this.#packageSource = source;
    this.#onRefused = onRefused;
  }

  /** Wires the telemetry sink after construction (its component may be built later). */
  setRecorder(record: RecordFn | undefined): void {
    this.#listeners.record = record;
  }

  /** Called after every single-model inference, served or failed in the backend (synchronously: keep it cheap). */
  onInference(fn: (e: InferenceEvent) => void): void {
    this.#listeners.onInference(fn);
  }

  /** Called with every shadow comparison and the id of the answer mirrored (the rollout gate, field examples). */
  onShadowResult(fn: (c: ShadowComparison, id?: string) => void): void {
    this.#listeners.onShadowResult(fn);
  }

  /** The `drift` field of a loaded version's manifest (its drift reference), for the drift monitor. */
  driftReferenceOf(name: string, version: string): unknown {
    const v = this.#served.slots.get(name)?.active;
    return v && v.version === version ? v.pkg.manifest.drift : undefined;
  }

  async start(): Promise<void> {
    this.#served.metrics ??= new RuntimeMetrics(this.#ctx.metrics);
    for (const m of this.#ctx.config.models) {
      this.#served.slot(m.name, m.backend);
      // The rollout slots may name installed versions to try first (the candidate on probation,
      // then the last committed one); the configured package is the last resort. A package that
      // does not load leaves the agent running and not ready, saying why.
      const packages = this.#packageSource?.(m.name, m.package) ?? [m.package];
      for (const pkg of packages) {
        try {
          await this.activate(m.name, pkg, m.backend);
          break;
        } catch (err) {
          this.#onRefused?.(m.name, pkg, err);
        }
      }
    }
    for (const e of this.#ctx.config.runtime.ensembles) this.#served.addEnsemble(e);
    for (const s of this.#ctx.config.runtime.shadows) {
      await this.startShadow(s.model, s.package, s.fraction, s.backend).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    await this.#swaps.unloadAll();
    await Promise.all([...this.#served.ensembles.values()].map((e) => e.combiner?.close()));
  }

  notReady(): string | undefined {
    return notReadyReason(this.#served, this.#ctx.config.models);
  }

  status(): Record<string, unknown> {
    return runtimeStatus(this.#served, this.#ctx.config.runtime);
  }

  list(): Record<string, unknown>[] {
    return listServed(this.#served);
  }

  /**
   * Admission of one request for `name`, from its headers alone (agent/runtime/admission.ts);
   * undefined for a name not served (the route answers 404). A refusal is counted here.
   */
  admit(name: string, ageMs?: number): Admission | undefined {
    const gate = this.#served.gates.get(name);
    if (!gate) return undefined;
    const a = gate.admit(ageMs);
    if (!a.admitted) {
      this.#served.metrics?.refused.inc({ model: name, reason: a.reason });
      this.#served.metrics?.errors.inc({ model: name, kind: 'overloaded' });
    }
    return a;
  }

  has(name: string): boolean {
    return this.#served.has(name);
  }

  /** What a request for `name` must send. */
  inputSpecs(name: string): IOSpec[] {
    return this.#served.inputSpecs(name);
  }

  /** The declared outputs of `name` (an ensemble: its fused scores). */
  outputSpecs(name: string): IOSpec[] {
    return this.#served.outputSpecs(name);
  }

  /**
   * The versions of `name` that answer requests now (the active one first, then an A/B
   * candidate) and those held loaded but not serving (the previous one, a shadow); undefined
   * for a name not served. An ensemble's one version names its members' (a@1+b@2).
   */
  versions(name: string): { serving: string[]; held: string[] } | undefined {
    return this.#served.versions(name);
  }

  /**
   * Loads, validates and warms up a package, then makes it the active version of `name`.
   * Until then the current version keeps serving; on any failure it stays active.
   */
  activate(name: string, packagePath: string, backend?: BackendRequest): Promise<VersionSummary> {
    return this.#swaps.activate(name, packagePath, backend);
  }

  /** Makes the previous version active again (the current one becomes the previous). */
  rollback(name: string): Promise<VersionSummary> {
    return this.#swaps.rollback(name);
  }

  /** Starts mirroring `fraction` of `name`'s requests to a candidate package. */
  startShadow(name: string, packagePath: string, fraction: number, backend: BackendRequest = 'auto'): Promise<VersionSummary> {
    return this.#swaps.startShadow(name, packagePath, fraction, backend);
  }

  stopShadow(name: string): Promise<Record<string, unknown> | undefined> {
    return this.#swaps.stopShadow(name);
  }

  /** A/B: serves `fraction` of `name`'s requests from a candidate package (answers included). */
  startAB(name: string, packagePath: string, fraction: number, backend: BackendRequest = 'auto'): Promise<VersionSummary> {
    return this.#swaps.startAB(name, packagePath, fraction, backend);
  }

  /** Ends an A/B split; the candidate is unloaded. Returns how many requests each arm served. */
  stopAB(name: string): Promise<ABResult | undefined> {
    return this.#swaps.stopAB(name);
  }

  /**
   * One inference. `opts.version` pins the version that must answer (the active one or an
   * A/B candidate); without it the A/B split draws the arm. `opts.abandoned` is asked when the
   * request's turn comes: true (its client's deadline passed) and it is not run. `opts.signal`
   * aborts when the client goes away: the request leaves the queue (queue.ts).
   */
  async infer(name: string, inputs: TensorMap, opts: InferOptions = {}): Promise<InferResult> {
    await holdInference();
    const pinned = opts.version;
    if (pinned !== undefined) {
      const v = this.versions(name);
      if (!v) throw this.#routing.count(name, 'not_found', this.#served.notFound(name));
      if (!v.serving.includes(pinned)) throw this.#routing.count(name, 'not_found', Errors.MODEL_VERSION_NOT_FOUND(name, pinned, v.serving, v.held));
    }
    const e = this.#served.ensembles.get(name);
    if (e) return this.#routing.ensemble(e, inputs, (member, memberInputs) => this.infer(member, memberInputs));
    return this.#routing.model(name, inputs, opts);
  }
}
