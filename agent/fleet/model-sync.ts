// The reconcile loop that keeps the models this device runs in line with the fleet's desired
// state, and reports each step on models/reported. Each step lives with the models:
// download (agent/models/download.ts) → verify and install (agent/models/install.ts, with
// the agent's signature verifier) → activate (the rollouts, agent/rollout/model-rollouts.ts).
import path from 'node:path';
import type { Logger } from '../log.js';
import { EdgeError, describe } from '../errors.js';
import { downloadArtifact, type ArtifactRequest } from '../models/download.js';
import { InstalledVersions, type UnpackArtifact, type VerifyPackage } from '../models/install.js';
import { agentReleaseArch } from '../../protocol/agent-release.js';
import { effectiveDesired, type DesiredDoc, type DesiredModel } from './desired.js';
import { FleetErrors } from '../errors.js';

// The fleet link builds model sync with these.
export type { UnpackArtifact, VerifyPackage } from '../models/install.js';

/** What model sync needs to activate a version: the rollouts (agent/rollout), or the runtime itself. */
import type { FieldReport } from '../learning/field-accuracy.js';

export interface ModelActivator {
  activate(name: string, packageDir: string): Promise<unknown> | unknown;
  rollback(name: string, opts?: { force?: boolean }): Promise<unknown> | unknown;
  list(): unknown;
  /** The rollout's word on an active version (probation, committed, rolled back), merged into the report. */
  rolloutState?(name: string, version: string): Partial<ModelReport> | undefined;
  /** Called when a rollout state changes, so the report is published again. */
  onRolloutChange?(fn: () => void): void;
}

export type ModelState = 'pending' | 'downloading' | 'verifying' | 'installed' | 'active' | 'failed'
  // From the rollouts (agent/rollout): the new version serves on probation, then is committed or rolled back.
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
  /** The model's field accuracy per version from labelled answers (agent/learning/field-accuracy.ts). */
  field?: FieldReport;
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
  /** The package steps of an install (agent/models/install.ts packageSteps()). */
  unpack?: UnpackArtifact;
  verify?: VerifyPackage;
  /** Self-update (agent/update/component.ts): desired entries named edge-agent-linux-ARCH are agent releases. */
  agentRelease?: AgentReleaseHandler;
}

/** How an agent release in the desired state is carried out: downloaded here like a model, then handed over. */
export interface AgentReleaseHandler {
  /** The report without a download (the running release, a settled outcome, another arch), or undefined to go ahead. */
  settled(m: DesiredModel): (Partial<ModelReport> & { state: ModelState }) | undefined;
  partialFile(m: DesiredModel): Promise<string>;
  /** Verifies, installs and switches to the release, then restarts the agent. */
  apply(partial: string, m: DesiredModel): Promise<void>;
}

/** Failures of the link: retried (with backoff) for as long as they last. */
const LINK_FAILURES = new Set([FleetErrors.TIMEOUT.code, FleetErrors.OFFLINE.code]);
/**
 * Failures of the artifact as it arrived (a refusal, a bad manifest or chunk): retried too,
 * since one forged or damaged answer on the broker must not fail a deploy for good, but at
 * most ARTIFACT_ATTEMPTS times per desired version; after that the failure stands.
 */
const ARTIFACT_FAILURES = new Set([FleetErrors.ARTIFACT.code, FleetErrors.CHUNK_HASH.code, FleetErrors.ARTIFACT_HASH.code]);
export const ARTIFACT_ATTEMPTS = 5;

/** States after which a pass leaves the model alone until its desired version changes. */
const SETTLED = new Set<ModelState>(['active', 'failed', 'shadow', 'probation', 'committed', 'rolled_back']);

export class ModelSync {
  #device: DesiredDoc | undefined;
  readonly #groups = new Map<string, DesiredDoc | undefined>();
  readonly #reports = new Map<string, ModelReport>();
  #running: Promise<void> | undefined;
  #rolloutListener = false;
  #again = false;
  #online = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = 0;
  /** Artifact failures per desired name@version#sha256 (see ARTIFACT_ATTEMPTS). */
  readonly #artifactAttempts = new Map<string, number>();

  readonly #installed: InstalledVersions;

  constructor(private readonly o: ModelSyncOptions) {
    this.#installed = new InstalledVersions(path.join(o.dataDir, 'models'), { unpack: o.unpack, verify: o.verify });
  }

  get modelsDir(): string {
    return this.#installed.modelsDir;
  }

  versionDir(name: string, version: string): string {
    return this.#installed.versionDir(name, version);
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
      // An agent release is looked at on every pass: its gate settles in another process (the new release).
      if (agentReleaseArch(m.name) !== undefined && this.o.agentRelease) {
        await this.#syncRelease(m, this.o.agentRelease);
        continue;
      }
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
    return this.#installed.isInstalled(m.name, m.version);
  }

  #activeVersion(name: string): string | undefined {
    return activeVersions(this.o.runtime()).get(name);
  }

  async #sync(m: DesiredModel): Promise<void> {
    const log = this.o.log.child({ model: m.name, version: m.version });
    const previous = this.#activeVersion(m.name);
    try {
      if (!(await this.#installed.holds(m))) {
        const partial = await this.#installed.partialFile(m);
        this.#set(m, 'downloading');
        const result = await this.#download(m, partial);
        log.info({ resumedFrom: result.resumedFrom, chunks: result.chunksFetched, retries: result.retries }, 'model artifact downloaded');
        this.#set(m, 'verifying');
        await this.#installed.install(partial, m);
        this.#set(m, 'installed');
      }
      await this.#activate(m.name, m.version);
      this.#set(m, 'active', { previous });
      this.#retryDelay = 0;
      log.info({ previous }, 'model version active');
    } catch (err) {
      this.#failed(m, err, previous, log);
    }
  }

  /** An agent release: downloaded and checked like a model, then installed by the self-updater, which restarts the agent. */
  async #syncRelease(m: DesiredModel, h: AgentReleaseHandler): Promise<void> {
    const settled = h.settled(m);
    const r = this.#reports.get(m.name);
    if (settled) {
      if (!(r && r.version === m.version && r.sha256 === m.sha256 && r.state === settled.state)) this.#set(m, settled.state, settled);
      return;
    }
    if (r && r.version === m.version && r.sha256 === m.sha256 && SETTLED.has(r.state)) return;
    if (!this.#online) {
      this.#set(m, 'pending');
      return;
    }
    const log = this.o.log.child({ release: m.name, version: m.version });
    try {
      const partial = await h.partialFile(m);
      this.#set(m, 'downloading');
      await this.#download(m, partial);
      this.#set(m, 'verifying');
      await h.apply(partial, m);
      this.#set(m, 'probation');
      log.info('agent release installed; restarting into it');
    } catch (err) {
      this.#failed(m, err, undefined, log);
    }
  }

  #download(m: DesiredModel, partial: string): ReturnType<typeof downloadArtifact> {
    return downloadArtifact(this.o.request, { sha256: m.sha256, size: m.size }, partial, {
      window: this.o.downloadWindow,
      timeoutMs: this.o.requestTimeoutMs ?? 15_000,
      attempts: 3,
      onProgress: (p) => {
        const r = this.#reports.get(m.name);
        if (r) r.progress = p;
        if (p.done === p.total || p.done % 16 === 0) this.#publish();
      },
    });
  }

  #failed(m: DesiredModel, err: unknown, previous: string | undefined, log: Logger): void {
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

  async #activate(name: string, version: string): Promise<void> {
    const rt = this.o.runtime();
    if (!rt) throw FleetErrors.UNAVAILABLE('no model runtime in this agent to activate the model');
    await rt.activate(name, this.#installed.packagePath(name, version));
  }

  /** models.activate: an installed version, by hand. */
  async activateInstalled(name: string, version: string): Promise<{ name: string; version: string; previous?: string }> {
    if (!this.#installed.isInstalled(name, version)) {
      throw FleetErrors.UNAVAILABLE(`model ${name} version ${version} is not installed on this device (installed: ${this.installed(name).join(', ') || 'none'})`);
    }
    const previous = this.#activeVersion(name);
    await this.#activate(name, version);
    return { name, version, previous };
  }

  installed(name: string): string[] {
    return this.#installed.list(name);
  }

  /** Re-reads the rollout states into the reports and publishes them. */
  refreshRolloutStates(): void {
    const rt = this.o.runtime();
    for (const r of this.#reports.values()) {
      if (!['active', 'shadow', 'probation', 'committed', 'rolled_back'].includes(r.state)) continue;
      const rollout = rt?.rolloutState?.(r.name, r.version);
      if (rollout) Object.assign(r, rollout, { at: new Date().toISOString() });
    }
    this.#publish();
  }

  #set(m: DesiredModel, state: ModelState, extra: Partial<ModelReport> = {}): void {
    if (state === 'active') {
      const rt = this.o.runtime();
      if (rt?.onRolloutChange && !this.#rolloutListener) {
        this.#rolloutListener = true;
        rt.onRolloutChange(() => this.refreshRolloutStates());
      }
      const rollout = rt?.rolloutState?.(m.name, m.version);
      if (rollout) {
        state = rollout.state ?? state;
        extra = { ...extra, ...rollout };
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
