// Changes to what a slot holds: a new active version (the old one serves until the new one
// is warm, then stays loaded as the previous for an instant rollback), a rollback, a shadow
// or A/B candidate. Each change to a slot waits for the one before (ModelSlot.serialize); a
// failed load leaves the slot as it was.
import { Errors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { BackendKind } from './backend.js';
import type { BackendRequest } from './choose.js';
import type { ModelVersion } from './model-version.js';
import type { PackageLoader } from './package-loader.js';
import type { ServedModels } from './served-models.js';
import { ShadowRun } from './shadow.js';

export interface VersionSummary {
  model: string;
  version: string;
  backend: BackendKind;
  reason: string;
  package: string;
}

export interface ABResult {
  version: string;
  fraction: number;
  served: { a: number; b: number };
}

export class VersionSwaps {
  readonly #served: ServedModels;
  readonly #loader: PackageLoader;
  readonly #log: Logger;
  #stopped = false;

  constructor(served: ServedModels, loader: PackageLoader, log: Logger) {
    this.#served = served;
    this.#loader = loader;
    this.#log = log;
  }

  /**
   * Loads, validates and warms up a package, then makes it the active version of `name`.
   * Until then the current version keeps serving; on any failure it stays active.
   */
  activate(name: string, packagePath: string, backend?: BackendRequest): Promise<VersionSummary> {
    const slot = this.#served.slot(name, backend ?? 'auto');
    return slot.serialize(async () => {
      const version = await this.#loader.load(slot, packagePath, backend ?? slot.backend, 'activate');
      if (this.#stopped) {
        await version.dispose();
        throw Errors.NOT_READY('the agent is stopping');
      }
      const old = slot.active;
      const dropped = slot.previous;
      slot.active = version;
      slot.previous = old;
      slot.lastError = undefined;
      if (dropped && dropped !== version) void dropped.dispose().then(() => this.#loader.forgetUnpacked(dropped));
      const summary = summaryOf(name, version);
      this.#log.info({ ...summary, replaced: old?.version, warmupMs: version.warmupMs }, old ? 'model version swapped in' : 'model loaded');
      return summary;
    });
  }

  /** Makes the previous version active again (the current one becomes the previous). */
  rollback(name: string): Promise<VersionSummary> {
    const slot = this.#served.slots.get(name);
    if (!slot) return Promise.reject(this.#served.notFound(name));
    return slot.serialize(async () => {
      if (!slot.previous) throw Errors.NO_PREVIOUS_VERSION(name);
      [slot.active, slot.previous] = [slot.previous, slot.active];
      const summary = summaryOf(name, slot.active!);
      this.#log.warn({ ...summary, from: slot.previous?.version }, 'model rolled back');
      return summary;
    });
  }

  /** Starts mirroring `fraction` of `name`'s requests to a candidate package. */
  startShadow(name: string, packagePath: string, fraction: number, backend: BackendRequest = 'auto'): Promise<VersionSummary> {
    const slot = this.#served.slots.get(name);
    if (!slot) return Promise.reject(this.#served.notFound(name));
    return slot.serialize(async () => {
      const version = await this.#loader.load(slot, packagePath, backend, 'shadow');
      const old = slot.shadow;
      slot.shadow = new ShadowRun(version, fraction);
      await old?.stop();
      const summary = summaryOf(name, version);
      this.#log.info({ ...summary, fraction }, 'shadow run started');
      return summary;
    });
  }

  stopShadow(name: string): Promise<Record<string, unknown> | undefined> {
    const slot = this.#served.slots.get(name);
    if (!slot) return Promise.reject(this.#served.notFound(name));
    return slot.serialize(async () => {
      const s = slot.shadow;
      slot.shadow = undefined;
      await s?.stop();
      return s?.summary();
    });
  }

  /** A/B: serves `fraction` of `name`'s requests from a candidate package (answers included). */
  startAB(name: string, packagePath: string, fraction: number, backend: BackendRequest = 'auto'): Promise<VersionSummary> {
    if (!(fraction > 0 && fraction < 1)) return Promise.reject(Errors.BAD_REQUEST(`A/B fraction must be between 0 and 1 (exclusive), got ${fraction}`));
    const slot = this.#served.slots.get(name);
    if (!slot) return Promise.reject(this.#served.notFound(name));
    return slot.serialize(async () => {
      const version = await this.#loader.load(slot, packagePath, backend, 'shadow');
      const old = slot.ab;
      slot.ab = { version, fraction, served: { a: 0, b: 0 } };
      if (old) void old.version.dispose();
      const summary = summaryOf(name, version);
      this.#log.info({ ...summary, fraction }, 'A/B split started');
      return summary;
    });
  }

  /** Ends an A/B split; the candidate is unloaded. Returns how many requests each arm served. */
  stopAB(name: string): Promise<ABResult | undefined> {
    const slot = this.#served.slots.get(name);
    if (!slot) return Promise.reject(this.#served.notFound(name));
    return slot.serialize(async () => {
      const ab = slot.ab;
      slot.ab = undefined;
      if (!ab) return undefined;
      await ab.version.dispose();
      return { version: ab.version.version, fraction: ab.fraction, served: ab.served };
    });
  }

  /** Unloads every version of every slot; an activation still loading is refused when it ends. */
  async unloadAll(): Promise<void> {
    this.#stopped = true;
    for (const slot of this.#served.slots.values()) {
      await slot.serialize(async () => {
        const versions = [slot.active, slot.previous];
        slot.active = slot.previous = undefined;
        await slot.shadow?.stop();
        slot.shadow = undefined;
        await slot.ab?.version.dispose();
        slot.ab = undefined;
        for (const v of versions) await v?.dispose();
      }).catch((err) => this.#log.warn({ model: slot.name, err: describe(err) }, 'unloading model'));
    }
  }
}

function summaryOf(model: string, v: ModelVersion): VersionSummary {
  return { model, version: v.version, backend: v.choice.chosen, reason: v.choice.reason, package: v.pkg.dir };
}
