// The inference runtime component: loads the configured model packages, warms each version
// up before it serves, hot-swaps versions (the old one serves until the new one is warm),
// rolls back, queues requests per model with a bound, serves ensembles and mirrors a share
// of requests to shadow candidates. A bad package never replaces a working version.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { AgentContext, Component } from '../component.js';
import { EdgeError, Errors, describe } from '../errors.js';
import { crashOnLoad, holdInference } from '../faults.js';
import { extractArchive, isArchive } from '../models/archive.js';
import { MANIFEST_FILE } from '../models/manifest.js';
import { loadPackage } from '../models/package.js';
import type { SignatureVerifier } from '../models/verify.js';
import { shapeProblem, symbolicSizes } from '../tensor/shape.js';
import type { BackendKind, IOSpec, TensorMap } from './backend.js';
import { openBackend, type BackendRequest } from './choose.js';
import { ENSEMBLE_OUTPUT, fuse, type Fusion } from './ensemble.js';
import { AdmissionGate, type Admission } from './admission.js';
import { RuntimeMetrics, type ErrorKind } from './metrics.js';
import { ModelVersion } from './model-version.js';
import { InferenceQueue } from './queue.js';
import { predictions, type Prediction } from './scores.js';
import { ShadowRun, type RecordFn, type ShadowComparison } from './shadow.js';
import { ModelSlot } from './slot.js';

export interface InferResult {
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

/** One served (or failed) inference of a single model, for the rollout probation and drift. */
export interface InferenceEvent {
  model: string;
  version: string;
  backend: BackendKind;
  inputs: TensorMap;
  /** Undefined when the backend failed. */
  outputs?: TensorMap;
  latencyMs: number;
  ok: boolean;
}

export interface RuntimeOptions {
  /** Where shadow comparisons go (the telemetry buffer's record()). */
  record?: RecordFn;
  /** Checks each package's signature (the agent's security policy builds it). */
  verifier: SignatureVerifier;
}

interface EnsembleEntry {
  name: string;
  members: string[];
  fusion: Fusion;
  weights?: number[];
  queue: InferenceQueue;
}

export interface VersionSummary {
  model: string;
  version: string;
  backend: BackendKind;
  reason: string;
  package: string;
}

export class ModelRuntime implements Component {
  readonly name = 'models';
  readonly #ctx: AgentContext;
  #record: RecordFn | undefined;
  readonly #verifier: SignatureVerifier;
  #metrics: RuntimeMetrics | undefined;
  readonly #slots = new Map<string, ModelSlot>();
  readonly #ensembles = new Map<string, EnsembleEntry>();
  /** Admission per served name (model or ensemble), decided before a request's body is read. */
  readonly #gates = new Map<string, AdmissionGate>();
  #stopped = false;
  #onShadow: ((c: ShadowComparison) => void)[] = [];
  #onInference: ((e: InferenceEvent) => void)[] = [];
  #packageSource: ((name: string, configured: string) => string[]) | undefined;
  #onRefused: ((name: string, pkg: string, err: unknown) => void) | undefined;

  constructor(ctx: AgentContext, opts: RuntimeOptions) {
    this.#ctx = ctx;
    this.#record = opts.record;
    this.#verifier = opts.verifier;
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
    this.#record = record;
  }

  /** Called after every single-model inference, served or failed in the backend (synchronously: keep it cheap). */
  onInference(fn: (e: InferenceEvent) => void): void {
    this.#onInference.push(fn);
  }

  #emit(e: InferenceEvent): void {
    for (const fn of this.#onInference) {
      try {
        fn(e);
      } catch (err) {
        this.#ctx.log.warn({ model: e.model, err: describe(err) }, 'inference listener failed');
      }
    }
  }

  /** The `drift` field of a loaded version's manifest (its drift reference), for the drift monitor. */
  driftReferenceOf(name: string, version: string): unknown {
    const v = this.#slots.get(name)?.active;
    return v && v.version === version ? v.pkg.manifest.drift : undefined;
  }

  /** Called with every shadow comparison (the rollout gate listens here). */
  onShadowResult(fn: (c: ShadowComparison) => void): void {
    this.#onShadow.push(fn);
  }

  get #cfg() {
    return this.#ctx.config.runtime;
  }

  async start(): Promise<void> {
    this.#metrics ??= new RuntimeMetrics(this.#ctx.metrics);
    for (const m of this.#ctx.config.models) {
      this.#slot(m.name, m.backend);
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
    for (const e of this.#cfg.ensembles) {
      this.#gate(e.name);
      this.#ensembles.set(e.name, {
        name: e.name, members: e.members, fusion: e.fusion, weights: e.weights,
        queue: new InferenceQueue(e.name, this.#queuePlaces(), (d) => this.#metrics?.queueDepth.set({ model: e.name }, d)),
      });
    }
    for (const s of this.#cfg.shadows) {
      await this.startShadow(s.model, s.package, s.fraction, s.backend).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const slot of this.#slots.values()) {
      await slot.serialize(async () => {
        const versions = [slot.active, slot.previous];
        slot.active = slot.previous = undefined;
        await slot.shadow?.stop();
        slot.shadow = undefined;
        await slot.ab?.version.dispose();
        slot.ab = undefined;
        for (const v of versions) await v?.dispose();
      }).catch((err) => this.#ctx.log.warn({ model: slot.name, err: describe(err) }, 'unloading model'));
    }
  }

  notReady(): string | undefined {
    const reasons: string[] = [];
    for (const m of this.#ctx.config.models) {
      const slot = this.#slots.get(m.name);
      if (slot?.active?.warmedUpAt !== undefined) continue;
      if (slot?.lastError) reasons.push(`model ${m.name} failed to load: ${slot.lastError.message}`);
      else reasons.push(`model ${m.name} is loading`);
    }
    return reasons.length ? reasons.join('; ') : undefined;
  }

  status(): Record<string, unknown> {
    const failed = [...this.#slots.values()].filter((s) => s.lastError);
    return {
      models: this.list(),
      runtime: {
        threads: this.#cfg.threads || 'auto', graphOptimizationLevel: this.#cfg.graphOptimizationLevel, warmup: this.#cfg.warmup,
        queueLimit: this.#cfg.queueLimit, queueWaitFactor: this.#cfg.queueWaitFactor, maxQueueWaitMs: this.#cfg.maxQueueWaitMs, maxRequestAgeMs: this.#cfg.maxRequestAgeMs,
      },
      warning: failed.length ? `last package refused for ${failed.map((s) => s.name).join(', ')}` : undefined,
    };
  }

  list(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const slot of this.#slots.values()) {
      const v = slot.active;
      out.push({
        name: slot.name,
        kind: 'model',
        ready: v?.warmedUpAt !== undefined,
        version: v?.version,
        backend: v?.choice.chosen,
        backendRequested: slot.backend,
        inputs: v?.pkg.manifest.inputs,
        outputs: v?.pkg.manifest.outputs,
        task: v?.pkg.manifest.task,
        active: v?.info(),
        previous: slot.previous ? { version: slot.previous.version, package: slot.previous.pkg.dir, backend: slot.previous.choice.chosen } : undefined,
        loading: slot.loading,
        lastError: slot.lastError,
        shadow: slot.shadow?.summary(),
        ab: slot.ab ? { version: slot.ab.version.version, fraction: slot.ab.fraction, served: slot.ab.served } : undefined,
        queueDepth: slot.queue.depth,
        admission: this.#gates.get(slot.name)?.describe(),
        latency: slot.latency(),
      });
    }
    for (const e of this.#ensembles.values()) {
      const first = this.#slots.get(e.members[0]!)?.active;
      out.push({
        name: e.name,
        kind: 'ensemble',
        ready: e.members.every((m) => this.#slots.get(m)?.active?.warmedUpAt !== undefined),
        fusion: e.fusion,
        weights: e.weights,
        members: e.members.map((m) => ({ model: m, version: this.#slots.get(m)?.active?.version })),
        inputs: first?.pkg.manifest.inputs,
        outputs: [{ name: ENSEMBLE_OUTPUT, dtype: 'float32', shape: ['N', first?.pkg.manifest.outputs[0]?.shape.at(-1) ?? 'C'] }],
        queueDepth: e.queue.depth,
        admission: this.#gates.get(e.name)?.describe(),
      });
    }
    return out;
  }

  /**
   * Admission of one request for `name`, from its headers alone (agent/runtime/admission.ts);
   * undefined for a name not served (the route answers 404). A refusal is counted here.
   */
  admit(name: string, ageMs?: number): Admission | undefined {
    const gate = this.#gates.get(name);
    if (!gate) return undefined;
    const a = gate.admit(ageMs);
    if (!a.admitted) {
      this.#metrics?.refused.inc({ model: name, reason: a.reason });
      this.#metrics?.errors.inc({ model: name, kind: 'overloaded' });
    }
    return a;
  }

  has(name: string): boolean {
    return this.#slots.has(name) || this.#ensembles.has(name);
  }

  /** What a request for `name` must send. */
  inputSpecs(name: string): IOSpec[] {
    const e = this.#ensembles.get(name);
    const slot = this.#slots.get(e ? e.members[0]! : name);
    if (!slot) throw this.#notFound(name);
    if (!slot.active) throw this.#notLoaded(slot);
    return slot.active.pkg.manifest.inputs;
  }

  /**
   * Loads, validates and warms up a package, then makes it the active version of `name`.
   * Until then the current version keeps serving; on any failure it stays active.
   */
  activate(name: string, packagePath: string, backend?: BackendRequest): Promise<VersionSummary> {
    const slot = this.#slot(name, backend ?? 'auto');
    return slot.serialize(async () => {
      const version = await this.#load(slot, packagePath, backend ?? slot.backend, 'activate');
      if (this.#stopped) {
        await version.dispose();
        throw Errors.NOT_READY('the agent is stopping');
      }
      const old = slot.active;
      const dropped = slot.previous;
      slot.active = version;
      slot.previous = old;
      slot.lastError = undefined;
      if (dropped && dropped !== version) void dropped.dispose().then(() => this.#forgetUnpacked(dropped));
      const summary = this.#summary(name, version);
      this.#ctx.log.info({ ...summary, replaced: old?.version, warmupMs: version.warmupMs }, old ? 'model version swapped in' : 'model loaded');
      return summary;
    });
  }

  /** Makes the previous version active again (the current one becomes the previous). */
  rollback(name: string): Promise<VersionSummary> {
    const slot = this.#slots.get(name);
    if (!slot) return Promise.reject(this.#notFound(name));
    return slot.serialize(async () => {
      if (!slot.previous) throw Errors.NO_PREVIOUS_VERSION(name);
      [slot.active, slot.previous] = [slot.previous, slot.active];
      const summary = this.#summary(name, slot.active!);
      this.#ctx.log.warn({ ...summary, from: slot.previous?.version }, 'model rolled back');
      return summary;
    });
  }

  /** Starts mirroring `fraction` of `name`'s requests to a candidate package. */
  startShadow(name: string, packagePath: string, fraction: number, backend: BackendRequest = 'auto'): Promise<VersionSummary> {
    const slot = this.#slots.get(name);
    if (!slot) return Promise.reject(this.#notFound(name));
    return slot.serialize(async () => {
      const version = await this.#load(slot, packagePath, backend, 'shadow');
      const old = slot.shadow;
      slot.shadow = new ShadowRun(version, fraction);
      await old?.stop();
      const summary = this.#summary(name, version);
      this.#ctx.log.info({ ...summary, fraction }, 'shadow run started');
      return summary;
    });
  }

  /** A/B: serves `fraction` of `name`'s requests from a candidate package (answers included). */
  startAB(name: string, packagePath: string, fraction: number, backend: BackendRequest = 'auto'): Promise<VersionSummary> {
    if (!(fraction > 0 && fraction < 1)) return Promise.reject(Errors.BAD_REQUEST(`A/B fraction must be between 0 and 1 (exclusive), got ${fraction}`));
    const slot = this.#slots.get(name);
    if (!slot) return Promise.reject(this.#notFound(name));
    return slot.serialize(async () => {
      const version = await this.#load(slot, packagePath, backend, 'shadow');
      const old = slot.ab;
      slot.ab = { version, fraction, served: { a: 0, b: 0 } };
      if (old) void old.version.dispose();
      const summary = this.#summary(name, version);
      this.#ctx.log.info({ ...summary, fraction }, 'A/B split started');
      return summary;
    });
  }

  /** Ends an A/B split; the candidate is unloaded. Returns how many requests each arm served. */
  stopAB(name: string): Promise<{ version: string; fraction: number; served: { a: number; b: number } } | undefined> {
    const slot = this.#slots.get(name);
    if (!slot) return Promise.reject(this.#notFound(name));
    return slot.serialize(async () => {
      const ab = slot.ab;
      slot.ab = undefined;
      if (!ab) return undefined;
      await ab.version.dispose();
      return { version: ab.version.version, fraction: ab.fraction, served: ab.served };
    });
  }

  stopShadow(name: string): Promise<Record<string, unknown> | undefined> {
    const slot = this.#slots.get(name);
    if (!slot) return Promise.reject(this.#notFound(name));
    return slot.serialize(async () => {
      const s = slot.shadow;
      slot.shadow = undefined;
      await s?.stop();
      return s?.summary();
    });
  }

  /**
   * The versions of `name` that answer requests now (the active one first, then an A/B
   * candidate) and those held loaded but not serving (the previous one, a shadow); undefined
   * for a name not served. An ensemble's one version names its members' (a@1+b@2).
   */
  versions(name: string): { serving: string[]; held: string[] } | undefined {
    const e = this.#ensembles.get(name);
    if (e) {
      const members = e.members.map((m) => this.#slots.get(m)?.active);
      return { serving: members.every((v) => v?.warmedUpAt !== undefined) ? [e.members.map((m, i) => `${m}@${members[i]!.version}`).join('+')] : [], held: [] };
    }
    const slot = this.#slots.get(name);
    if (!slot) return undefined;
    const serving: string[] = [];
    if (slot.active?.warmedUpAt !== undefined) serving.push(slot.active.version);
    if (slot.ab && !serving.includes(slot.ab.version.version)) serving.push(slot.ab.version.version);
    const held = [slot.previous?.version, slot.shadow?.candidate.version].filter((v): v is string => v !== undefined && !serving.includes(v));
    return { serving, held: [...new Set(held)] };
  }

  /** The declared outputs of `name` (an ensemble: its fused scores). */
  outputSpecs(name: string): IOSpec[] {
    const e = this.#ensembles.get(name);
    const slot = this.#slots.get(e ? e.members[0]! : name);
    if (!slot) throw this.#notFound(name);
    if (!slot.active) throw this.#notLoaded(slot);
    const outputs = slot.active.pkg.manifest.outputs;
    if (!e) return outputs;
    return [{ name: ENSEMBLE_OUTPUT, dtype: 'float32', shape: ['N', outputs[0]?.shape.at(-1) ?? 'C'] }];
  }

  /**
   * One inference. `opts.version` pins the version that must answer (the active one or an
   * A/B candidate); without it the A/B split draws the arm. `opts.abandoned` is asked when the
   * request's turn comes: true (its client's deadline passed) and it is not run. `opts.signal`
   * aborts when the client goes away: the request leaves the queue (queue.ts).
   */
  async infer(name: string, inputs: TensorMap, opts: { version?: string; abandoned?: () => boolean; signal?: AbortSignal } = {}): Promise<InferResult> {
    await holdInference();
    const pinned = opts.version;
    if (pinned !== undefined) {
      const v = this.versions(name);
      if (!v) throw this.#count(name, 'not_found', this.#notFound(name));
      if (!v.serving.includes(pinned)) throw this.#count(name, 'not_found', Errors.MODEL_VERSION_NOT_FOUND(name, pinned, v.serving, v.held));
    }
    const e = this.#ensembles.get(name);
    if (e) return this.#inferEnsemble(e, inputs);
    const slot = this.#slots.get(name);
    if (!slot) throw this.#count(name, 'not_found', this.#notFound(name));
    if (!slot.active) throw this.#count(name, 'not_ready', this.#notLoaded(slot));
    const problem = inputProblem(slot.active.pkg.manifest.inputs, inputs);
    if (problem) throw this.#count(name, 'bad_input', Errors.INPUT_INVALID(name, problem));
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
      if (!version) throw this.#notLoaded(slot);
      // A swap while this request waited may have retired the pinned version.
      if (pinned !== undefined && version.version !== pinned) {
        const v = this.versions(name)!;
        throw Errors.MODEL_VERSION_NOT_FOUND(name, pinned, v.serving, v.held);
      }
      // A swap while this request waited may have changed what the model accepts.
      const again = inputProblem(version.pkg.manifest.inputs, inputs);
      if (again) throw Errors.INPUT_INVALID(name, again);
      try {
        const out = await version.run(inputs);
        return { version, out, ms: performance.now() - started };
      } catch (err) {
        this.#emit({ model: name, version: version.version, backend: version.choice.chosen, inputs, latencyMs: performance.now() - started, ok: false });
        throw Errors.INFERENCE_FAILED(`${name}@${version.version}`, describe(err));
      }
    }, opts.signal).catch((err: unknown) => {
      const kind: ErrorKind = err instanceof EdgeError ? (err.statusCode === 429 ? 'overloaded' : err.statusCode === 400 ? 'bad_input' : err.statusCode === 404 ? 'not_found' : err.statusCode === 504 ? 'deadline' : 'backend') : 'backend';
      throw this.#count(name, kind, err);
    });
    this.#metrics?.latency.observe({ model: name, version: version.version, backend: version.choice.chosen }, ms / 1000);
    slot.noteLatency(ms);
    this.#gates.get(name)?.noteService(ms, alone);
    if (this.#onInference.length) this.#emit({ model: name, version: version.version, backend: version.choice.chosen, inputs, outputs: out, latencyMs: ms, ok: true });
    const shadow = slot.shadow;
    if (shadow?.take()) {
      setImmediate(() => void shadow.mirror(name, version, inputs, out, ms, this.#record, (c) => {
        this.#metrics?.shadowAgreement.inc({ model: name, candidate: c.candidate, agree: c.top1Agreement === 1 ? 'yes' : 'no' });
        for (const fn of this.#onShadow) fn(c);
      }));
    }
    return {
      model: name,
      version: version.version,
      backend: version.choice.chosen,
      latencyMs: round(ms),
      queueMs: round(started - queued),
      outputs: out,
      predictions: predictions(version.pkg.manifest.postprocessing, out),
    };
  }

  async #inferEnsemble(e: EnsembleEntry, inputs: TensorMap): Promise<InferResult> {
    const queued = performance.now();
    const alone = e.queue.depth === 0;
    let started = 0;
    const result = await e.queue.run(async () => {
      started = performance.now();
      const answers = await Promise.all(e.members.map((m) => this.infer(m, inputs)));
      const manifests = e.members.map((m) => this.#slots.get(m)!.active!.pkg.manifest);
      let fused;
      try {
        fused = fuse(e.fusion, e.weights, answers.map((a, i) => ({ outputs: a.outputs, manifest: manifests[i]! })));
      } catch (err) {
        throw Errors.INFERENCE_FAILED(e.name, `members disagree in shape: ${describe(err)}`);
      }
      const labels = manifests[0]!.postprocessing?.labels;
      return { answers, fused, labels };
    }).catch((err: unknown) => {
      throw this.#count(e.name, err instanceof EdgeError && err.statusCode === 429 ? 'overloaded' : err instanceof EdgeError && err.statusCode < 500 ? 'bad_input' : 'backend', err);
    });
    const ms = performance.now() - started;
    this.#metrics?.latency.observe({ model: e.name, version: 'ensemble', backend: 'ensemble' }, ms / 1000);
    this.#gates.get(e.name)?.noteService(ms, alone);
    const outputs = { [ENSEMBLE_OUTPUT]: result.fused };
    return {
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

  async #load(slot: ModelSlot, packagePath: string, backend: BackendRequest, purpose: 'activate' | 'shadow'): Promise<ModelVersion> {
    slot.loading = packagePath;
    let version: ModelVersion | undefined;
    let dir: string | undefined;
    try {
      dir = await this.#unpack(packagePath);
      const pkg = await loadPackage(dir, { verifier: this.#verifier });
      crashOnLoad(pkg.manifest.name, pkg.manifest.version);
      const opened = await openBackend(pkg, backend, { threads: this.#cfg.threads, graphOptimizationLevel: this.#cfg.graphOptimizationLevel });
      version = new ModelVersion(pkg, opened.backend, opened.choice);
      this.#ctx.log.info({ model: slot.name, version: pkg.manifest.version, backend: opened.choice.chosen, requested: opened.choice.requested, reason: opened.choice.reason, purpose }, 'backend chosen');
      if (opened.choice.warning) this.#ctx.log.warn({ model: slot.name, version: pkg.manifest.version, reason: opened.choice.warning }, 'the backend computes this model inexactly on this CPU');
      try {
        await version.warmUp(this.#cfg.warmup);
      } catch (err) {
        throw Errors.PACKAGE_INVALID(`${pkg.dir} (${pkg.manifest.name}@${pkg.manifest.version})`, `warm-up inference failed on ${opened.choice.chosen}: ${describe(err)}`);
      }
      return version;
    } catch (err) {
      if (version) await version.dispose().catch(() => undefined);
      // A refused archive leaves nothing behind under dataDir/packages/.
      if (dir && dir !== packagePath && !this.#inUse(dir)) rmSync(dir, { recursive: true, force: true });
      const e = err instanceof EdgeError ? err : Errors.PACKAGE_INVALID(packagePath, describe(err));
      if (purpose === 'activate') slot.lastError = { package: packagePath, message: e.message, code: e.code, at: new Date().toISOString() };
      this.#metrics?.errors.inc({ model: slot.name, kind: 'load' });
      this.#ctx.log.error({ model: slot.name, package: packagePath, code: e.code, err: e.message, serving: slot.active?.version ?? null, purpose }, 'model package refused');
      throw e;
    } finally {
      slot.loading = undefined;
    }
  }

  /**
   * An archive unpacked under dataDir/packages/ is deleted once no loaded version uses it
   * (the bytes are in memory; keeping every past version's files would fill a small disk).
   */
  #forgetUnpacked(v: ModelVersion): void {
    const root = path.join(this.#ctx.config.dataDir, 'packages') + path.sep;
    if (!v.pkg.dir.startsWith(root)) return;
    if (this.#inUse(v.pkg.dir, v)) return;
    rmSync(v.pkg.dir, { recursive: true, force: true });
  }

  /** Whether a loaded version (other than `except`) runs from this folder. */
  #inUse(dir: string, except?: ModelVersion): boolean {
    for (const s of this.#slots.values()) {
      for (const live of [s.active, s.previous, s.shadow?.candidate]) if (live && live !== except && live.pkg.dir === dir) return true;
    }
    return false;
  }

  /** A package folder as is; a .edgepkg unpacked (once) under dataDir/packages/. */
  async #unpack(packagePath: string): Promise<string> {
    if (!isArchive(packagePath)) return packagePath;
    if (!existsSync(packagePath)) throw Errors.PACKAGE_INVALID(packagePath, 'the archive does not exist');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(packagePath, { highWaterMark: 64 * 1024 })) hash.update(chunk as Buffer);
    const digest = hash.digest('hex').slice(0, 24);
    const dest = path.join(this.#ctx.config.dataDir, 'packages', `${path.basename(packagePath, '.edgepkg')}-${digest}`);
    if (!existsSync(path.join(dest, MANIFEST_FILE))) await extractArchive(packagePath, dest, { verifier: this.#verifier });
    return dest;
  }

  #slot(name: string, backend: BackendRequest): ModelSlot {
    let slot = this.#slots.get(name);
    if (!slot) {
      slot = new ModelSlot(name, backend, new InferenceQueue(name, this.#queuePlaces(), (d) => this.#metrics?.queueDepth.set({ model: name }, d)));
      this.#slots.set(name, slot);
      this.#gate(name);
    }
    return slot;
  }

  /**
   * Waiting places of a model's queue: admission's queueLimit, and one more for a request
   * admitted while the running one's client has gone (admission freed that place at once, but
   * a running inference cannot be taken back from the backend).
   */
  #queuePlaces(): number {
    return this.#cfg.queueLimit + 1;
  }

  #gate(name: string): void {
    if (this.#gates.has(name)) return;
    const { queueLimit, queueWaitFactor, maxQueueWaitMs, maxRequestAgeMs } = this.#cfg;
    this.#gates.set(name, new AdmissionGate({ queueLimit, queueWaitFactor, maxQueueWaitMs, maxRequestAgeMs }));
  }

  #summary(model: string, v: ModelVersion): VersionSummary {
    return { model, version: v.version, backend: v.choice.chosen, reason: v.choice.reason, package: v.pkg.dir };
  }

  #notFound(name: string): EdgeError {
    return Errors.MODEL_NOT_FOUND(name, [...this.#slots.keys(), ...this.#ensembles.keys()]);
  }

  #notLoaded(slot: ModelSlot): EdgeError {
    return Errors.NOT_READY(`model ${slot.name} is not loaded${slot.lastError ? `: ${slot.lastError.message}` : ' yet'}`);
  }

  #count(model: string, kind: ErrorKind, err: unknown): unknown {
    this.#metrics?.errors.inc({ model, kind });
    return err;
  }
}

/** Why a set of input tensors does not fit a model's declared inputs. */
export function inputProblem(specs: IOSpec[], inputs: TensorMap): string | undefined {
  const expected = specs.map((s) => `"${s.name}"`).join(', ');
  for (const name of Object.keys(inputs)) {
    if (!specs.some((s) => s.name === name)) return `unknown input "${name}" (the model takes ${expected})`;
  }
  for (const s of specs) {
    const t = inputs[s.name];
    if (!t) return `missing input "${s.name}" (the model takes ${expected})`;
    const p = shapeProblem(s, t);
    if (p) return p;
  }
  return symbolicSizes(specs, inputs).problem;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
