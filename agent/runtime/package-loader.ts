// Loading one model version: a package folder or .edgepkg archive (unpacked once under
// dataDir/packages/), validated, given a backend (choose.ts) and warmed up. A package that
// fails any step is refused with a reason, and leaves nothing behind.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { EdgeError, Errors, describe } from '../errors.js';
import { crashOnLoad } from '../faults.js';
import type { Logger } from '../log.js';
import { extractArchive, isArchive } from '../models/archive.js';
import { MANIFEST_FILE } from '../models/manifest.js';
import { loadPackage } from '../models/package.js';
import type { SignatureVerifier } from '../models/verify.js';
import { openBackend, type BackendRequest } from './choose.js';
import { ModelVersion } from './model-version.js';
import type { RuntimeConfig, ServedModels } from './served-models.js';
import type { ModelSlot } from './slot.js';

/** 'activate' records a refusal as the slot's last error; a shadow or A/B candidate does not. */
export type LoadPurpose = 'activate' | 'shadow';

export class PackageLoader {
  readonly #served: ServedModels;
  readonly #cfg: RuntimeConfig;
  readonly #dataDir: string;
  readonly #log: Logger;
  readonly #verifier: SignatureVerifier;

  constructor(served: ServedModels, cfg: RuntimeConfig, dataDir: string, log: Logger, verifier: SignatureVerifier) {
    this.#served = served;
    this.#cfg = cfg;
    this.#dataDir = dataDir;
    this.#log = log;
    this.#verifier = verifier;
  }

  async load(slot: ModelSlot, packagePath: string, backend: BackendRequest, purpose: LoadPurpose): Promise<ModelVersion> {
    slot.loading = packagePath;
    let version: ModelVersion | undefined;
    let dir: string | undefined;
    try {
      dir = await this.#unpack(packagePath);
      const pkg = await loadPackage(dir, { verifier: this.#verifier });
      crashOnLoad(pkg.manifest.name, pkg.manifest.version);
      const opened = await openBackend(pkg, backend, {
        threads: this.#cfg.threads, graphOptimizationLevel: this.#cfg.graphOptimizationLevel,
        offThreadAboveMs: this.#cfg.offThreadAboveMs, offThreadNice: this.#cfg.offThreadNice, name: `${pkg.manifest.name}@${pkg.manifest.version}`,
      });
      version = new ModelVersion(pkg, opened.backend, opened.choice);
      this.#log.info({ model: slot.name, version: pkg.manifest.version, backend: opened.choice.chosen, requested: opened.choice.requested, reason: opened.choice.reason, purpose, details: opened.backend.describe() }, 'backend chosen');
      if (opened.choice.warning) this.#log.warn({ model: slot.name, version: pkg.manifest.version, reason: opened.choice.warning }, 'the backend computes this model inexactly on this CPU');
      try {
        await version.warmUp(this.#cfg.warmup);
      } catch (err) {
        throw Errors.PACKAGE_INVALID(`${pkg.dir} (${pkg.manifest.name}@${pkg.manifest.version})`, `warm-up inference failed on ${opened.choice.chosen}: ${describe(err)}`);
      }
      return version;
    } catch (err) {
      if (version) await version.dispose().catch(() => undefined);
      // A refused archive leaves nothing behind under dataDir/packages/.
      if (dir && dir !== packagePath && !this.#served.inUse(dir)) rmSync(dir, { recursive: true, force: true });
      const e = err instanceof EdgeError ? err : Errors.PACKAGE_INVALID(packagePath, describe(err));
      if (purpose === 'activate') slot.lastError = { package: packagePath, message: e.message, code: e.code, at: new Date().toISOString() };
      this.#served.metrics?.errors.inc({ model: slot.name, kind: 'load' });
      this.#log.error({ model: slot.name, package: packagePath, code: e.code, err: e.message, serving: slot.active?.version ?? null, purpose }, 'model package refused');
      throw e;
    } finally {
      slot.loading = undefined;
    }
  }

  /**
   * An archive unpacked under dataDir/packages/ is deleted once no loaded version uses it
   * (the bytes are in memory; keeping every past version's files would fill a small disk).
   */
  forgetUnpacked(v: ModelVersion): void {
    const root = path.join(this.#dataDir, 'packages') + path.sep;
    if (!v.pkg.dir.startsWith(root)) return;
    if (this.#served.inUse(v.pkg.dir, v)) return;
    rmSync(v.pkg.dir, { recursive: true, force: true });
  }

  /** A package folder as is; a .edgepkg unpacked (once) under dataDir/packages/. */
  async #unpack(packagePath: string): Promise<string> {
    if (!isArchive(packagePath)) return packagePath;
    if (!existsSync(packagePath)) throw Errors.PACKAGE_INVALID(packagePath, 'the archive does not exist');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(packagePath, { highWaterMark: 64 * 1024 })) hash.update(chunk as Buffer);
    const digest = hash.digest('hex').slice(0, 24);
    const dest = path.join(this.#dataDir, 'packages', `${path.basename(packagePath, '.edgepkg')}-${digest}`);
    if (!existsSync(path.join(dest, MANIFEST_FILE))) await extractArchive(packagePath, dest, { verifier: this.#verifier });
    return dest;
  }
}
