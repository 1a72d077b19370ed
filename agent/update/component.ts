// The self-update part of the running agent (config update.root): at start, the data
// directory in a format this release reads; then, when this release is the pending update,
// the health gate: ready (every model served), connected to the broker when one is
// configured, within update.gateTimeoutMs, and the update is committed; otherwise it is
// rolled back and the agent exits EXIT_RESTART so that systemd or the supervisor starts the
// previous release. Its status (GET /v1/status "update", and the fleet status) says which
// release runs and how the last update ended.
import { readKeyEntries } from '../security/trusted-keys.js';
import type { AgentContext, Component } from '../component.js';
import { describe } from '../errors.js';
import { killAtUpdateStep } from '../faults.js';
import { agentReleaseArch } from '../../protocol/agent-release.js';
import { UpdateErrors } from '../errors.js';
import type { AgentReleaseHandler } from '../fleet/model-sync.js';
import { applyRelease, commit, prepareDataDir, rollBack, runningRelease, type UpdatePaths } from './apply.js';
import { currentVersion, readState, EXIT_RESTART, type ReleaseInfo } from './layout.js';
import { partialFile, type ReleaseCheck } from './release.js';

export interface UpdateHooks {
  /** Why the agent is not ready (empty when it is), without this component. */
  notReady: () => string[];
  /** Connected to the fleet broker (true when none is configured). */
  connected: () => boolean;
  /** Stops the agent and exits with this status. */
  exit: (code: number) => void;
  /** The gate passed: the fleet report is made again (model sync). */
  committed?: () => void;
}

export class SelfUpdate implements Component {
  readonly name = 'update';
  readonly #ctx: AgentContext;
  readonly #hooks: UpdateHooks;
  readonly paths: UpdatePaths;
  readonly release: ReleaseInfo | undefined;
  #gate: 'none' | 'waiting' | 'passed' | 'failed' = 'none';
  #timer: NodeJS.Timeout | undefined;

  constructor(ctx: AgentContext, hooks: UpdateHooks, env: NodeJS.ProcessEnv = process.env) {
    this.#ctx = ctx;
    this.#hooks = hooks;
    this.paths = { root: ctx.config.update.root ?? '', dataDir: ctx.config.dataDir };
    this.release = runningRelease(env);
  }

  /** What a release offered to this device is checked against. */
  releaseCheck(force = false): ReleaseCheck {
    const u = this.#ctx.config.update;
    const keys = u.trustedKeys.length ? u.trustedKeys : this.#ctx.config.security.trustedKeys;
    return { trustedKeysPem: readKeyEntries(keys, u.trustedKeys.length ? 'update.trustedKeys' : 'security.trustedKeys'), arch: process.arch, currentVersion: this.release?.version, force };
  }

  async start(): Promise<void> {
    if (!this.release) {
      this.#ctx.log.info({ root: this.paths.root }, 'self-update: not started from a release under update.root (no EDGE_AGENT_RELEASE_DIR): no health gate');
      return;
    }
    await prepareDataDir(this.release, this.paths.dataDir);
    const pending = readState(this.paths.dataDir).pending;
    if (pending?.to !== this.release.version) return;
    this.#gate = 'waiting';
    killAtUpdateStep('gate');
    const started = Date.now();
    const timeoutMs = this.#ctx.config.update.gateTimeoutMs;
    this.#ctx.log.info({ version: this.release.version, from: pending.from, start: pending.starts, timeoutMs }, 'self-update: health gate');
    const tick = (): void => {
      this.#timer = undefined;
      const why = [...this.#hooks.notReady(), ...(this.#hooks.connected() ? [] : ['not connected to the fleet broker'])];
      if (why.length === 0) {
        this.#gate = 'passed';
        commit(this.paths, this.release!.version).then(
          () => {
            this.#ctx.log.info({ version: this.release!.version, from: pending.from }, 'self-update committed');
            this.#hooks.committed?.();
          },
          (err) => this.#ctx.log.error({ err: describe(err) }, 'self-update: commit failed'),
        );
        return;
      }
      if (Date.now() - started < timeoutMs) {
        this.#timer = setTimeout(tick, 250);
        return;
      }
      this.#gate = 'failed';
      const reason = `health gate: not ready within ${timeoutMs} ms (${why.join('; ')})`;
      rollBack(this.paths, reason).then(
        (state) => {
          this.#ctx.log.error({ version: this.release!.version, outcome: state.last?.outcome, reason: state.last?.reason }, 'self-update: health gate failed');
          if (state.last?.outcome === 'rolled-back') this.#hooks.exit(EXIT_RESTART);
        },
        (err) => this.#ctx.log.error({ err: describe(err) }, 'self-update: rollback failed'),
      );
    };
    // The first look once everything else has started (this component starts before the HTTP server listens).
    this.#timer = setTimeout(tick, 250);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Agent releases in the desired state, for model sync: the entry for this machine's arch is
   * downloaded like a model, then installed here; the report says committed once the gate of
   * that version passed, rolled_back (with the reason) when it did not. The desired state is
   * the fleet's explicit choice: an older version is accepted (a rollout's rollback), still
   * only signed, for this arch, and able to read the data directory.
   */
  fleetHandler(): AgentReleaseHandler {
    return {
      settled: (m) => {
        const arch = agentReleaseArch(m.name);
        if (arch !== process.arch) {
          return { state: 'failed', code: UpdateErrors.RELEASE_REFUSED.code, reason: UpdateErrors.RELEASE_REFUSED(`${m.version}`, `it is built for ${String(arch)}, this machine is ${process.arch}`).message };
        }
        if (!this.release) return { state: 'failed', code: UpdateErrors.NO_RELEASE.code, reason: 'this agent was not started from a release under update.root (EDGE_AGENT_RELEASE_DIR): it cannot update itself' };
        const state = readState(this.paths.dataDir);
        if (this.release.version === m.version) return state.pending?.to === m.version ? { state: 'probation' } : { state: 'committed' };
        const last = state.last;
        if (last?.version === m.version && (last.outcome === 'rolled-back' || last.outcome === 'rollback-refused')) {
          return { state: 'rolled_back', reason: `${last.outcome}: ${last.reason ?? ''}`, previous: this.release.version };
        }
        return undefined;
      },
      partialFile: (m) => partialFile(this.paths.root, { version: m.version, sha256: m.sha256 }),
      apply: async (partial, m) => {
        const info = await applyRelease(this.paths, partial, { version: m.version, sha256: m.sha256 }, this.releaseCheck(true));
        this.#ctx.log.info({ version: info.version, from: this.release?.version }, 'self-update: release installed and current switched; restarting');
        this.#hooks.exit(EXIT_RESTART);
      },
    };
  }

  status(): Record<string, unknown> {
    const state = readState(this.paths.dataDir);
    return {
      root: this.paths.root,
      release: this.release?.version ?? null,
      current: currentVersion(this.paths.root) ?? null,
      gate: this.#gate,
      pending: state.pending ?? null,
      last: state.last ?? null,
    };
  }
}
