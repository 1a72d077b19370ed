// What the runtime serves, by name: one slot per model, the ensembles over them, and the
// admission gate of each. The queries that answer "which versions serve `name`" and the
// errors for a name not served or not loaded live here, beside the maps they read.
import type { Config } from '../config/schema.js';
import { EdgeError, Errors } from '../errors.js';
import type { IOSpec } from './backend.js';
import type { BackendRequest } from './choose.js';
import { ENSEMBLE_OUTPUT, type Fusion } from './ensemble.js';
import { AdmissionGate } from './admission.js';
import type { RuntimeMetrics } from './metrics.js';
import type { ModelVersion } from './model-version.js';
import { InferenceQueue } from './queue.js';
import { Combiner } from './stacking.js';
import { ModelSlot } from './slot.js';

export type RuntimeConfig = Config['runtime'];

export interface EnsembleEntry {
  name: string;
  members: string[];
  fusion: Fusion;
  weights?: number[];
  /** Fusion "stacked": the learned model that fuses the members' concatenated scores. */
  combiner?: Combiner;
  queue: InferenceQueue;
}

export class ServedModels {
  readonly slots = new Map<string, ModelSlot>();
  readonly ensembles = new Map<string, EnsembleEntry>();
  /** Admission per served name (model or ensemble), decided before a request's body is read. */
  readonly gates = new Map<string, AdmissionGate>();
  /** Set when the runtime starts (its metrics join the registry then); absent before. */
  metrics: RuntimeMetrics | undefined;
  readonly #cfg: RuntimeConfig;

  constructor(cfg: RuntimeConfig) {
    this.#cfg = cfg;
  }

  /** The slot of `name`, made (with its queue and admission gate) on first use. */
  slot(name: string, backend: BackendRequest): ModelSlot {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = new ModelSlot(name, backend, this.#queue(name));
      this.slots.set(name, slot);
      this.#gate(name);
    }
    return slot;
  }

  addEnsemble(e: { name: string; members: string[]; fusion: Fusion; weights?: number[]; combiner?: string }): void {
    this.#gate(e.name);
    const combiner = e.fusion === 'stacked' && e.combiner ? new Combiner(e.combiner) : undefined;
    this.ensembles.set(e.name, { name: e.name, members: e.members, fusion: e.fusion, weights: e.weights, ...(combiner ? { combiner } : {}), queue: this.#queue(e.name) });
  }

  has(name: string): boolean {
    return this.slots.has(name) || this.ensembles.has(name);
  }

  /** The slot of a model, or of an ensemble's first member (which decides its inputs and outputs). */
  loadedSlotFor(name: string): { slot: ModelSlot; ensemble: EnsembleEntry | undefined; version: ModelVersion } {
    const ensemble = this.ensembles.get(name);
    const slot = this.slots.get(ensemble ? ensemble.members[0]! : name);
    if (!slot) throw this.notFound(name);
    if (!slot.active) throw this.notLoaded(slot);
    return { slot, ensemble, version: slot.active };
  }

  /** What a request for `name` must send. */
  inputSpecs(name: string): IOSpec[] {
    return this.loadedSlotFor(name).version.pkg.manifest.inputs;
  }

  /** The declared outputs of `name` (an ensemble: its fused scores). */
  outputSpecs(name: string): IOSpec[] {
    const { ensemble, version } = this.loadedSlotFor(name);
    const outputs = version.pkg.manifest.outputs;
    if (!ensemble) return outputs;
    return [ensembleOutputSpec(outputs)];
  }

  /**
   * The versions of `name` that answer requests now (the active one first, then an A/B
   * candidate) and those held loaded but not serving (the previous one, a shadow); undefined
   * for a name not served. An ensemble's one version names its members' (a@1+b@2).
   */
  versions(name: string): { serving: string[]; held: string[] } | undefined {
    const e = this.ensembles.get(name);
    if (e) {
      const members = e.members.map((m) => this.slots.get(m)?.active);
      return { serving: members.every((v) => v?.warmedUpAt !== undefined) ? [e.members.map((m, i) => `${m}@${members[i]!.version}`).join('+')] : [], held: [] };
    }
    const slot = this.slots.get(name);
    if (!slot) return undefined;
    const serving: string[] = [];
    if (slot.active?.warmedUpAt !== undefined) serving.push(slot.active.version);
    if (slot.ab && !serving.includes(slot.ab.version.version)) serving.push(slot.ab.version.version);
    const held = [slot.previous?.version, slot.shadow?.candidate.version].filter((v): v is string => v !== undefined && !serving.includes(v));
    return { serving, held: [...new Set(held)] };
  }

  /** Whether a loaded version (other than `except`) runs from this folder. */
  inUse(dir: string, except?: ModelVersion): boolean {
    for (const s of this.slots.values()) {
      for (const live of [s.active, s.previous, s.shadow?.candidate]) if (live && live !== except && live.pkg.dir === dir) return true;
    }
    return false;
  }

  notFound(name: string): EdgeError {
    return Errors.MODEL_NOT_FOUND(name, [...this.slots.keys(), ...this.ensembles.keys()]);
  }

  notLoaded(slot: ModelSlot): EdgeError {
    return Errors.NOT_READY(`model ${slot.name} is not loaded${slot.lastError ? `: ${slot.lastError.message}` : ' yet'}`);
  }

  /**
   * A queue with the waiting places of admission's queueLimit, and one more for a request
   * admitted while the running one's client has gone (admission freed that place at once, but
   * a running inference cannot be taken back from the backend).
   */
  #queue(name: string): InferenceQueue {
    return new InferenceQueue(name, this.#cfg.queueLimit + 1, (d) => this.metrics?.queueDepth.set({ model: name }, d));
  }

  #gate(name: string): void {
    if (this.gates.has(name)) return;
    const { queueLimit, queueWaitFactor, maxQueueWaitMs, maxRequestAgeMs } = this.#cfg;
    this.gates.set(name, new AdmissionGate({ queueLimit, queueWaitFactor, maxQueueWaitMs, maxRequestAgeMs }));
  }
}

/** An ensemble's one output: the fused scores, one row per batch row, one column per class. */
export function ensembleOutputSpec(firstMemberOutputs: IOSpec[] | undefined): IOSpec {
  return { name: ENSEMBLE_OUTPUT, dtype: 'float32', shape: ['N', firstMemberOutputs?.[0]?.shape.at(-1) ?? 'C'] };
}
