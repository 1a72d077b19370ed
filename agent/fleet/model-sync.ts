// Keeps the models this device runs in line with the fleet's desired state: download over
// the broker, verify, install beside the current version, activate, and report each step
// on models/reported. Installs are atomic (temporary name, fsync, rename): a power cut leaves
// either the old tree or the new one, never half of one. Earlier versions stay for rollback.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { EdgeError, describe } from '../errors.js';
import { downloadArtifact, sha256OfFile, type ArtifactRequest } from './artifact-download.js';
import { effectiveDesired, type DesiredDoc, type DesiredModel } from './desired.js';
import { FleetErrors } from '../errors.js';
import { MANIFEST_FILE } from '../models/manifest.js';

/** What model sync needs from the model runtime (agent/models). */
export interface ModelActivator {
  activate(name: string, packageDir: string): Promise<unknown> | unknown;
  rollback(name: string, opts?: { force?: boolean }): Promise<unknown> | unknown;
  list(): unknown;
  /** The rollout slot's word on an active version (probation, committed, rolled back), merged into the report. */
  slotState?(name: string, version: string): Partial<ModelReport> | undefined;
  /** Called when a slot state changes, so the report is published again. */
  onSlotChange?(fn: () => void): void;
}

/** Turns a downloaded artifact into an installable package folder (and checks it). */
export type UnpackArtifact = (artifactFile: string, destDir: string) => Promise<void>;
/** Verifies a package folder's signature; throws to refuse it. */
export type VerifyPackage = (packageDir: string) => Promise<unknown>;

export type ModelState = 'pending' | 'downloading' | 'verifying' | 'installed' | 'active' | 'failed'
  // From the rollout slots (agent/rollout): the new version serves on probation, then is committed or rolled back.
  | 'shadow' | 'probation' | 'committed' | 'rolled_back';

export interface ModelReport {
  name: string;
  version: string;
  sha256: string;
  state: ModelState;
  /** Set when failed: why, with a stable code. */
  reason?: string;
  code?: string;
  /** Download progress: chunks done / total, and where a resumed download started. */
  progress?: { done: number; total: number; resumedFrom: number };
  /** The version that was active before this one (for rollback). */
  previous?: string;
  at: string;
}

export interface ModelSyncOptions {
  dataDir: string;
  groups: string[];
  downloadWindow: number;
  requestTimeoutMs?: number;
  /** First retry delay after a failure of the link (timeouts); doubles up to a minute. */
  retryMs?: number;
  log: Logger;
  request: ArtifactRequest;
  /** Publishes the whole report document (retained) when connected. */
  report: (doc: { v: 1; models: ModelReport[] }) => void;
  runtime: () => ModelActivator | undefined;
  unpack?: UnpackArtifact;
  verify?: VerifyPackage;
}

/** The mark beside an installed version folder: `.<version>.installed.json`. */
function markFile(parent: string, version: string): string {
  return path.join(parent, `.${version}.installed.json`);
}
export const ARTIFACT_FILE = 'package.edgepkg';
/** States after which a pass leaves the model alone until its desired version changes. */
/** Failures of the link: retried (with backoff) for as long as they last. */
const LINK_FAILURES = new Set([FleetErrors.TIMEOUT.code, FleetErrors.OFFLINE.code]);
/**
 * Failures of the artifact as it arrived (a refusal, a bad manifest or chunk): retried too,
 * since one forged or damaged answer on the broker must not fail a deploy for good, but at
 * most ARTIFACT_ATTEMPTS times per desired version; after that the failure stands.
 */
const ARTIFACT_FAILURES = new Set([FleetErrors.ARTIFACT.code, FleetErrors.CHUNK_HASH.code, FleetErrors.ARTIFACT_HASH.code]);
export const ARTIFACT_ATTEMPTS = 5;

const SETTLED = new Set<ModelState>(['active', 'failed', 'shadow', 'probation', 'committed', 'rolled_back']);

export class ModelSync {
  #device: DesiredDoc | undefined;
  readonly #groups = new Map<string, DesiredDoc | undefined>();
  readonly #reports = new Map<string, ModelReport>();
  #running: Promise<void> | undefined;
  #slotListener = false;
  #again = false;
  #online = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = 0;
  /** Artifact failures per desired name@version#sha256 (see ARTIFACT_ATTEMPTS). */
  readonly #artifactAttempts = new Map<string, number>();

  constructor(private readonly o: ModelSyncOptions) {}

  get modelsDir(): string {
    return path.join(this.o.dataDir, 'models');
  }

  versionDir(name: string, version: string): string {
    return path.join(this.modelsDir, name, version);
  }

  reports(): ModelReport[] {
    return [...this.#reports.values()];
  }

  /** The desired documents received, by source, and what they add up to (for status). */
  desired(): { device: DesiredDoc | null; groups: Record<string, DesiredDoc | null>; effective: DesiredModel[] } {
    return {
      device: this.#device ?? null,
      groups: Object.fromEntries(this.o.groups.map((g) => [g, this.#groups.get(g) ?? null])),
      effective: [...effectiveDesired(this.#device, this.o.groups.map((g) => this.#groups.get(g))).values()],
    };
  }

  setDesired(source: { device: true } | { group: string }, doc: DesiredDoc | null): void {
    if ('device' in source) this.#device = doc ?? undefined;
    else this.#groups.set(source.group, doc ?? undefined);
    this.reconcile();
  }

  setOnline(online: boolean): void {
    this.#online = online;
    if (online) {
      // Failures of the link (timeouts, a dropped broker) are worth another try now.
      this.#retryTransient();
      this.#publish();
      this.reconcile();
    }
  }

  /** Runs one reconciliation pass (serially; a change during a pass schedules another). */
  reconcile(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#pass();
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<void> {
    const want = effectiveDesired(this.#device, this.o.groups.map((g) => this.#groups.get(g)));
    for (const m of want.values()) {
      const r = this.#reports.get(m.name);
      if (r && r.version === m.version && r.sha256 === m.sha256 && SETTLED.has(r.state)) continue;
      if (this.#activeVersion(m.name) === m.version && this.#isInstalled(m)) {
        this.#set(m, 'active');
        continue;
      }
      if (!this.#online && !this.#isInstalled(m)) {
        this.#set(m, 'pending');
        continue;
      }
      await this.#sync(m);
    }
  }

  #isInstalled(m: DesiredModel): boolean {
    return isInstalled(this.modelsDir, m.name, m.version);
  }

  #activeVersion(name: string): string | undefined {
    return activeVersions(this.o.runtime()).get(name);
  }

  async #sync(m: DesiredModel): Promise<void> {
    const log = this.o.log.child({ model: m.name, version: m.version });
    const previous = this.#activeVersion(m.name);
    try {
      const finalDir = this.versionDir(m.name, m.version);
      if (!(await this.#installedMatches(finalDir, m.sha256))) {
        const parent = path.join(this.modelsDir, m.name);
        await mkdir(parent, { recursive: true });
        const partial = path.join(parent, `.${m.version}.${m.sha256.slice(0, 12)}.partial`);
        this.#set(m, 'downloading');
        const result = await downloadArtifact(this.o.request, { sha256: m.sha256, size: m.size }, partial, {
          window: this.o.downloadWindow,
          timeoutMs: this.o.requestTimeoutMs ?? 15_000,
          attempts: 3,
          onProgress: (p) => {
            const r = this.#reports.get(m.name);
            if (r) r.progress = p;
            if (p.done === p.total || p.done % 16 === 0) this.#publish();
          },
        });
        log.info({ resumedFrom: result.resumedFrom, chunks: result.chunksFetched, retries: result.retries }, 'model artifact downloaded');
        this.#set(m, 'verifying');
        await removeInstallLeftovers(parent, m.version);
        await this.#install(partial, parent, finalDir, m);
        this.#set(m, 'installed');
      }
      await this.#activate(m.name, finalDir);
      this.#set(m, 'active', { previous });
      this.#retryDelay = 0;
      log.info({ previous }, 'model version active');
    } catch (err) {
      const code = err instanceof EdgeError ? err.code : FleetErrors.INSTALL.code;
      log.warn({ err: describe(err), code }, 'model sync failed; the current version stays active');
      const key = `${m.name}@${m.version}#${m.sha256}`;
      const attempts = (this.#artifactAttempts.get(key) ?? 0) + (ARTIFACT_FAILURES.has(code) ? 1 : 0);
      if (ARTIFACT_FAILURES.has(code)) this.#artifactAttempts.set(key, attempts);
      const retry = LINK_FAILURES.has(code) || (ARTIFACT_FAILURES.has(code) && attempts < ARTIFACT_ATTEMPTS);
      const reason = ARTIFACT_FAILURES.has(code) && !retry ? `${describe(err)} (gave up after ${attempts} attempts)` : describe(err);
      this.#set(m, 'failed', { reason, code, previous });
      if (retry) this.#scheduleRetry();
    }
  }

  /** A download that failed on the link is tried again later; it resumes where it stopped. */
  #scheduleRetry(): void {
    if (this.#retryTimer) return;
    const base = this.o.retryMs ?? 2000;
    this.#retryDelay = Math.min(60_000, this.#retryDelay ? this.#retryDelay * 2 : base);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#retryTransient();
      void this.reconcile();
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  #retryTransient(): void {
    for (const r of this.#reports.values()) {
      if (r.state !== 'failed' || !r.code) continue;
      const retriable = LINK_FAILURES.has(r.code)
        || (ARTIFACT_FAILURES.has(r.code) && (this.#artifactAttempts.get(`${r.name}@${r.version}#${r.sha256}`) ?? 0) < ARTIFACT_ATTEMPTS);
      if (retriable) r.state = 'pending';
    }
  }

  stop(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  async #installedMatches(dir: string, sha: string): Promise<boolean> {
    try {
      const mark = JSON.parse(await readFile(markFile(path.dirname(dir), path.basename(dir)), 'utf8')) as { sha256?: string };
      return mark.sha256 === sha && existsSync(dir);
    } catch {
      return false;
    }
  }

  /**
   * Unpacks and verifies into a temporary folder beside the final one, fsyncs, renames it
   * in, then writes the "installed" mark (itself by temporary name and rename), and only then
   * removes the download. A crash before the mark leaves a folder that the next attempt
   * replaces, temporary folders it removes, and the download, which it resumes.
   */
  async #install(partial: string, parent: string, finalDir: string, m: DesiredModel): Promise<void> {
    const tmp = path.join(parent, `.${m.version}.tmp-${randomBytes(4).toString('hex')}`);
    try {
      // Re-check the bytes that will be used, not the ones that were downloaded.
      const got = await sha256OfFile(partial);
      if (got !== m.sha256) throw FleetErrors.ARTIFACT_HASH(m.sha256, got);
      if (this.o.unpack) {
        // The download stays until the install is complete: a restart during verifying resumes
        // it (every chunk kept) instead of fetching it again.
        await this.o.unpack(partial, tmp);
      } else {
        await mkdir(tmp);
        await rename(partial, path.join(tmp, ARTIFACT_FILE));
      }
      if (this.o.verify) {
        try {
          await this.o.verify(tmp);
        } catch (err) {
          throw FleetErrors.SIGNATURE(describe(err));
        }
      }
      if (this.o.unpack && existsSync(path.join(tmp, MANIFEST_FILE))) {
        // The label in the desired state must be the one the (signed) manifest carries: a
        // relabelled build would be reported as a version it is not.
        const signed = JSON.parse(await readFile(path.join(tmp, MANIFEST_FILE), 'utf8')) as { name?: unknown; version?: unknown };
        if (signed.name !== m.name || signed.version !== m.version) {
          throw FleetErrors.VERSION_MISMATCH(`${m.name}@${m.version}`, `${String(signed.name)}@${String(signed.version)}`);
        }
      }
      await fsyncTree(tmp);
      await rm(finalDir, { recursive: true, force: true }); // an install that never got its mark
      await rename(tmp, finalDir);
      await fsyncPath(parent);
      const mark = markFile(parent, m.version);
      await writeFile(`${mark}.tmp`, JSON.stringify({ name: m.name, version: m.version, sha256: m.sha256, installedAt: new Date().toISOString() }) + '\n');
      await fsyncPath(`${mark}.tmp`);
      await rename(`${mark}.tmp`, mark);
      await fsyncPath(parent);
      await rm(partial, { force: true });
    } catch (err) {
      // A refused package is not kept for the next attempt either.
      await rm(tmp, { recursive: true, force: true });
      await rm(partial, { force: true });
      if (err instanceof EdgeError) throw err;
      throw FleetErrors.INSTALL(describe(err));
    }
  }

  async #activate(name: string, dir: string): Promise<void> {
    const rt = this.o.runtime();
    if (!rt) throw FleetErrors.UNAVAILABLE('no model runtime in this agent to activate the model');
    await rt.activate(name, this.o.unpack ? dir : path.join(dir, ARTIFACT_FILE));
  }

  /** models.activate: an installed version, by hand. */
  async activateInstalled(name: string, version: string): Promise<{ name: string; version: string; previous?: string }> {
    const dir = this.versionDir(name, version);
    if (!isInstalled(this.modelsDir, name, version)) {
      throw FleetErrors.UNAVAILABLE(`model ${name} version ${version} is not installed on this device (installed: ${this.installed(name).join(', ') || 'none'})`);
    }
    const previous = this.#activeVersion(name);
    await this.#activate(name, dir);
    return { name, version, previous };
  }

  installed(name: string): string[] {
    const base = path.join(this.modelsDir, name);
    try {
      return readdirSafe(base).filter((v) => isInstalled(this.modelsDir, name, v));
    } catch {
      return [];
    }
  }

  /** Re-reads the rollout slots' states into the reports and publishes them. */
  refreshSlotStates(): void {
    const rt = this.o.runtime();
    for (const r of this.#reports.values()) {
      if (!['active', 'shadow', 'probation', 'committed', 'rolled_back'].includes(r.state)) continue;
      const slot = rt?.slotState?.(r.name, r.version);
      if (slot) Object.assign(r, slot, { at: new Date().toISOString() });
    }
    this.#publish();
  }

  #set(m: DesiredModel, state: ModelState, extra: Partial<ModelReport> = {}): void {
    if (state === 'active') {
      const rt = this.o.runtime();
      if (rt?.onSlotChange && !this.#slotListener) {
        this.#slotListener = true;
        rt.onSlotChange(() => this.refreshSlotStates());
      }
      const slot = rt?.slotState?.(m.name, m.version);
      if (slot) {
        state = slot.state ?? state;
        extra = { ...extra, ...slot };
      }
    }
    const prev = this.#reports.get(m.name);
    const same = prev && prev.version === m.version && prev.sha256 === m.sha256;
    this.#reports.set(m.name, {
      name: m.name,
      version: m.version,
      sha256: m.sha256,
      state,
      ...(same && state !== 'failed' && prev.progress ? { progress: prev.progress } : {}),
      ...(same && prev.previous ? { previous: prev.previous } : {}),
      ...extra,
      at: new Date().toISOString(),
    });
    this.#publish();
  }

  #publish(): void {
    this.o.report({ v: 1, models: this.reports() });
  }
}

function isInstalled(modelsDir: string, name: string, version: string): boolean {
  const parent = path.join(modelsDir, name);
  return existsSync(markFile(parent, version)) && existsSync(path.join(parent, version));
}

/**
 * What a killed install of `version` leaves beside the installed versions: its temporary
 * folders and an unrenamed mark. The next install of that version starts without them.
 */
async function removeInstallLeftovers(parent: string, version: string): Promise<void> {
  const stale = readdirSync(parent).filter((n) => n.startsWith(`.${version}.tmp-`) || n === `.${version}.installed.json.tmp`);
  for (const n of stale) await rm(path.join(parent, n), { recursive: true, force: true });
}

function readdirSafe(dir: string): string[] {
  return readdirSync(dir).filter((n) => !n.startsWith('.'));
}

/** name -> version from whatever the runtime's list() returns (an array or a map of entries). */
export function activeVersions(rt: ModelActivator | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!rt) return out;
  let list: unknown;
  try {
    list = rt.list();
  } catch {
    return out;
  }
  const entries = Array.isArray(list) ? list : list && typeof list === 'object' ? Object.values(list) : [];
  for (const e of entries as Record<string, unknown>[]) {
    if (!e || typeof e !== 'object') continue;
    const name = e.name;
    const version = e.version ?? (e.manifest as Record<string, unknown> | undefined)?.version;
    if (typeof name === 'string' && (typeof version === 'string' || typeof version === 'number')) out.set(name, String(version));
  }
  return out;
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncTree(dir: string): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await fsyncTree(p);
    else if (e.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir);
}
