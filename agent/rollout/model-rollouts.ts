// The device side of a safe rollout: per model, a committed version and a candidate (kept in
// rollout-store.ts). A new version (from the fleet or a command) becomes the candidate:
// optionally shadowed first, then served on probation while it is watched; it is committed
// when probation passes and rolled back to the last committed version when it fails, when it
// does not load, or when the agent keeps dying during its probation (a boot counter in
// SQLite). Every step is recorded and reported.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentContext, Component } from '../component.js';
import { Errors, describe } from '../errors.js';
import type { InferenceEvent, ModelRuntime, VersionSummary } from '../runtime/model-runtime.js';
import type { ShadowComparison } from '../runtime/shadow.js';
import type { FieldAccuracy, FieldReport } from '../learning/field-accuracy.js';
import { allFinite, MIN_LATENCY_SAMPLES, Probation, type ProbationRules } from './probation.js';
import { percentile } from './stats.js';
import { RolloutStore, type RolloutRecord, type RolloutVersion } from './rollout-store.js';

export type RecordFn = (stream: string, payload: unknown, opts?: { priority?: number }) => unknown;

export interface RolloutDeps {
  runtime: () => ModelRuntime;
  record?: RecordFn;
  /** Field accuracy per version from labelled answers: reported with each model (the controller's field gate). */
  field?: FieldAccuracy;
}

interface ShadowGate {
  version: string;
  dir: string;
  agree: number;
  samples: number;
}

const BASELINE_SAMPLES = 512;
const EVALUATE_MS = 1000;

export class ModelRollouts implements Component {
  readonly name = 'rollouts';
  readonly #ctx: AgentContext;
  readonly #deps: RolloutDeps;
  #store: RolloutStore | undefined;
  readonly #probations = new Map<string, Probation>();
  readonly #shadows = new Map<string, ShadowGate>();
  /** Recent latencies of the version each model serves, the baseline for a candidate's p99. */
  readonly #baseline = new Map<string, { version: string; ms: number[] }>();
  /** Versions rolled back on this device: never activated again automatically. */
  readonly #refused = new Map<string, { reason: string; at: number }>();
  readonly #listeners: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #deciding = new Set<string>();

  constructor(ctx: AgentContext, deps: RolloutDeps) {
    this.#ctx = ctx;
    this.#deps = deps;
  }

  get #rules(): ProbationRules {
    const p = this.#ctx.config.rollout.probation;
    return { minInferences: p.minInferences, minDurationMs: p.minSeconds * 1000, maxErrorRate: p.maxErrorRate, maxLatencyRatio: p.maxLatencyRatio, failOnNonFinite: p.failOnNonFinite };
  }

  get #records(): RolloutStore {
    if (!this.#store) throw Errors.NOT_READY('the rollout state is not open');
    return this.#store;
  }

  /** Runs before the model runtime: decides which version each model loads. */
  async start(): Promise<void> {
    const store = new RolloutStore(this.#ctx.config.dataDir);
    this.#store = store;
    for (const e of store.refusedVersions()) this.#refused.set(key(e.model, e.version), { reason: e.reason ?? 'rolled back', at: e.at });
    const boots = store.countBoot();
    for (const record of store.all()) {
      const c = record.candidate;
      if (!c) continue;
      const n = boots.get(record.model) ?? 0;
      if (n > this.#ctx.config.rollout.probation.maxRestarts) {
        // The agent keeps dying while this version is on probation: a crash loop.
        this.#refuse(record, `crash loop: the agent restarted ${n} times during probation of ${c.version}`, { restarts: n });
      } else {
        this.#ctx.log.warn({ model: record.model, version: c.version, restarts: n }, 'agent restarted during probation; the candidate gets another try');
      }
    }
    const rt = this.#deps.runtime();
    rt.setPackageSource(
      (name, configured) => {
        const s = this.#records.get(name);
        return [s.candidate?.dir, s.active?.dir, configured].filter((d, i, all): d is string => !!d && all.indexOf(d) === i);
      },
      (name, pkg, err) => {
        const s = this.#records.get(name);
        if (s.candidate && s.candidate.dir === pkg) this.#refuse(s, `the candidate did not load at start: ${describe(err)}`, {});
      },
    );
    rt.onInference((e) => this.#observe(e));
    rt.onShadowResult((c) => this.#shadowResult(c));
    this.#deps.field?.onChange(() => this.#changed());
    this.#timer = setInterval(() => this.#evaluateAll(), EVALUATE_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#deps.field?.stop();
    // A clean stop is not a crash: it does not count against the candidate.
    this.#store?.resetBoots();
    this.#store?.close();
    this.#store = undefined;
  }

  status(): Record<string, unknown> {
    if (!this.#store) return {};
    return Object.fromEntries(this.#records.all().map((s) => [s.model, this.#describe(s)]));
  }

  onRolloutChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  /** What models/reported should say about `version` of `name`, with the model's field accuracy once it has labels. */
  rolloutState(name: string, version: string): { state?: 'probation' | 'shadow' | 'committed' | 'rolled_back'; reason?: string; probation?: unknown; shadow?: unknown; field?: FieldReport } | undefined {
    const state = this.#rolloutState(name, version);
    const field = this.#deps.field?.report(name);
    return field ? { ...state, field } : state;
  }

  #rolloutState(name: string, version: string): { state: 'probation' | 'shadow' | 'committed' | 'rolled_back'; reason?: string; probation?: unknown; shadow?: unknown } | undefined {
    const refused = this.#refused.get(key(name, version));
    if (refused) return { state: 'rolled_back', reason: refused.reason };
    const gate = this.#shadows.get(name);
    if (gate?.version === version) return { state: 'shadow', shadow: { agreement: gate.samples ? gate.agree / gate.samples : 0, samples: gate.samples } };
    if (!this.#store) return undefined;
    const s = this.#records.get(name);
    if (s.candidate?.version === version) return { state: 'probation', probation: this.#probations.get(name)?.evidence() };
    if (s.active?.version === version) return { state: 'committed' };
    return undefined;
  }

  // --- ModelActivator (what the fleet link and commands call) ---------------------------

  list(): unknown {
    const rt = this.#deps.runtime();
    return (rt.list() as Record<string, unknown>[]).map((m) => {
      const s = this.#store ? this.#records.get(String(m.name)) : undefined;
      return s ? { ...m, rollout: this.#describe(s) } : m;
    });
  }

  /** A new version arrives: shadow it first when configured, then serve it on probation. */
  async activate(name: string, packageDir: string): Promise<VersionSummary | Record<string, unknown>> {
    const version = versionOf(packageDir);
    if (version && this.#refused.has(key(name, version))) {
      const r = this.#refused.get(key(name, version))!;
      throw Errors.VERSION_ROLLED_BACK(`model ${name} version ${version} was rolled back on this device (${r.reason}); publish a new version`);
    }
    // The fleet went back to the version serving now while another one was in shadow (a halted
    // rollout): the shadow run ends and its version is refused; what serves stays.
    const shadowing = this.#shadows.get(name);
    if (shadowing && version && shadowing.version !== version && version === this.#activeVersion(name)) {
      await this.#endShadow(name, `the desired version went back to ${version}`);
      return { model: name, version, state: 'active' };
    }
    const shadow = this.#ctx.config.rollout.shadow;
    if (shadow.fraction > 0 && this.#activeVersion(name)) {
      await this.#deps.runtime().startShadow(name, packageDir, shadow.fraction);
      this.#shadows.set(name, { version: version ?? '?', dir: packageDir, agree: 0, samples: 0 });
      this.#records.event({ model: name, version: version ?? '?', step: 'shadow', evidence: { fraction: shadow.fraction } });
      this.#changed();
      return { model: name, version, state: 'shadow', fraction: shadow.fraction };
    }
    return this.#promote(name, packageDir, version);
  }

  /**
   * The operator's rollback: a candidate goes back to the committed version; otherwise the two
   * committed versions swap. After an automatic rollback the runtime's other version is the one
   * that just failed: going back to it needs `force`.
   */
  async rollback(name: string, opts: { force?: boolean } = {}): Promise<VersionSummary | Record<string, unknown>> {
    // A version in shadow serves nothing: rolling it back ends the shadow run; what serves stays.
    if (this.#shadows.has(name)) {
      await this.#endShadow(name, 'rolled back by command');
      return { model: name, version: this.#activeVersion(name), state: 'active' };
    }
    const s = this.#records.get(name);
    if (s.candidate) return this.#rollbackCandidate(name, 'rolled back by command', {});
    const rt = this.#deps.runtime();
    const other = (rt.list() as { name: string; previous?: { version: string } }[]).find((m) => m.name === name)?.previous?.version;
    const failed = other ? this.#refused.get(key(name, other)) : undefined;
    if (failed && !opts.force) {
      throw Errors.VERSION_ROLLED_BACK(
        `model ${name}: the version to go back to, ${other}, was rolled back on this device (${failed.reason}); ` +
        'it stays off unless you pass force: true (edge-fleet cmd DEVICE models.rollback --args \'{"name":"' + name + '","force":true}\')');
    }
    if (failed) this.#refused.delete(key(name, other!));
    const summary = await this.#goBack(name, undefined);
    if (s.active && s.previous) this.#records.put({ model: name, active: s.previous, previous: s.active });
    this.#records.event({ model: name, version: summary.version, step: 'rolled_back', reason: 'rolled back by command' });
    this.#changed();
    return summary;
  }

  // --- internals --------------------------------------------------------------------------

  async #promote(name: string, dir: string, version: string | undefined): Promise<VersionSummary> {
    const rt = this.#deps.runtime();
    const before = this.#records.get(name);
    // The version serving now is the one to fall back to; remember it before anything changes.
    const current = before.active ?? this.#currentFromRuntime(name);
    this.#records.put({ model: name, active: current, previous: before.previous, candidate: { version: version ?? '?', dir, phase: 'probation', boots: 0, since: Date.now() } });
    this.#records.event({ model: name, version: version ?? '?', step: 'probation' });
    let summary: VersionSummary;
    try {
      summary = await rt.activate(name, dir);
    } catch (err) {
      const s = this.#records.get(name);
      this.#refuse(s, `did not load: ${describe(err)}`, {});
      throw err;
    }
    const base = this.#baseline.get(name);
    const baselineP99 = base && base.version !== summary.version && base.ms.length >= MIN_LATENCY_SAMPLES ? percentile(base.ms, 99) : undefined;
    this.#probations.set(name, new Probation(this.#rules, baselineP99));
    if (summary.version !== version) {
      const s = this.#records.get(name);
      this.#records.put({ ...s, candidate: { ...s.candidate!, version: summary.version } });
    }
    this.#changed();
    return summary;
  }

  #observe(e: InferenceEvent): void {
    const cand = this.#store?.get(e.model).candidate;
    let p = this.#probations.get(e.model);
    if (cand && cand.version === e.version && !p) this.#probations.set(e.model, (p = new Probation(this.#rules, undefined)));
    if (p && cand && cand.version === e.version) {
      p.observe(e.latencyMs, e.ok, !e.outputs || allFinite(e.outputs));
      if (!e.ok || (e.outputs && !allFinite(e.outputs))) this.#evaluate(e.model);
      return;
    }
    let b = this.#baseline.get(e.model);
    if (!b || b.version !== e.version) this.#baseline.set(e.model, (b = { version: e.version, ms: [] }));
    if (e.ok) {
      if (b.ms.length >= BASELINE_SAMPLES) b.ms.shift();
      b.ms.push(e.latencyMs);
    }
  }

  #shadowResult(c: ShadowComparison): void {
    const gate = this.#shadows.get(c.model);
    if (!gate || gate.version !== c.candidate) return;
    gate.samples += c.rows;
    gate.agree += c.top1Agreement * c.rows;
    const cfg = this.#ctx.config.rollout.shadow;
    if (gate.samples < cfg.minSamples || this.#deciding.has(c.model)) return;
    this.#deciding.add(c.model);
    const agreement = gate.agree / gate.samples;
    void (async () => {
      try {
        await this.#deps.runtime().stopShadow(c.model);
        // Ended meanwhile (the fleet went back, or a rollback command): nothing left to decide.
        if (this.#shadows.get(c.model) !== gate) return;
        this.#shadows.delete(c.model);
        if (agreement >= cfg.minAgreement) {
          this.#records.event({ model: c.model, version: gate.version, step: 'shadow_passed', evidence: { agreement, samples: gate.samples } });
          await this.#promote(c.model, gate.dir, gate.version);
        } else {
          const reason = `shadow top-1 agreement ${agreement.toFixed(3)} < ${cfg.minAgreement} over ${gate.samples} requests`;
          this.#refused.set(key(c.model, gate.version), { reason, at: Date.now() });
          this.#records.event({ model: c.model, version: gate.version, step: 'rolled_back', reason, evidence: { agreement, samples: gate.samples } });
          this.#report(c.model, gate.version, 'rolled_back', reason, { agreement, samples: gate.samples });
          this.#changed();
        }
      } catch (err) {
        this.#ctx.log.error({ model: c.model, err: describe(err) }, 'shadow gate failed');
      } finally {
        this.#deciding.delete(c.model);
      }
    })();
  }

  /** Ends the shadow run of `name` and refuses its version, as a failed shadow gate does. */
  async #endShadow(name: string, reason: string): Promise<void> {
    const gate = this.#shadows.get(name);
    if (!gate) return;
    await this.#deps.runtime().stopShadow(name);
    this.#shadows.delete(name);
    const evidence = { agreement: gate.samples ? gate.agree / gate.samples : undefined, samples: gate.samples };
    this.#refused.set(key(name, gate.version), { reason, at: Date.now() });
    this.#records.event({ model: name, version: gate.version, step: 'rolled_back', reason, evidence });
    this.#report(name, gate.version, 'rolled_back', reason, evidence);
    this.#ctx.log.warn({ model: name, version: gate.version, reason }, 'shadow run ended; the version is rolled back');
    this.#changed();
  }

  #evaluateAll(): void {
    if (!this.#store) return;
    for (const record of this.#records.all()) {
      if (!record.candidate) continue;
      // A candidate that survived a restart resumes probation from zero.
      if (!this.#probations.has(record.model)) this.#probations.set(record.model, new Probation(this.#rules, undefined));
      this.#evaluate(record.model);
    }
  }

  #evaluate(name: string): void {
    const p = this.#probations.get(name);
    if (!p || this.#deciding.has(name)) return;
    const v = p.verdict();
    if (v.kind === 'pending') return;
    this.#deciding.add(name);
    const done = v.kind === 'pass'
      ? this.#commit(name, v.evidence)
      : this.#rollbackCandidate(name, `probation failed: ${v.reason}`, v.evidence).then(() => undefined);
    done.catch((err) => this.#ctx.log.error({ model: name, err: describe(err) }, 'probation decision failed'))
      .finally(() => this.#deciding.delete(name));
  }

  async #commit(name: string, evidence: unknown): Promise<void> {
    const s = this.#records.get(name);
    if (!s.candidate) return;
    const { version, dir } = s.candidate;
    this.#records.put({ model: name, active: { version, dir }, previous: s.active });
    this.#probations.delete(name);
    this.#records.event({ model: name, version, step: 'committed', evidence });
    this.#report(name, version, 'committed', undefined, evidence);
    this.#ctx.log.info({ model: name, version, evidence }, 'model version committed after probation');
    this.#changed();
  }

  async #rollbackCandidate(name: string, reason: string, evidence: unknown): Promise<VersionSummary> {
    const summary = await this.#goBack(name, this.#records.get(name).active);
    this.#refuse(this.#records.get(name), reason, evidence);
    return summary;
  }

  /**
   * The one way back, for the operator's rollback and a failed candidate alike: the runtime's
   * instant swap when `to` (the committed version) is the version it keeps loaded as previous,
   * or when none is named; otherwise `to` is loaded again from its folder. With nothing to go
   * back to, the runtime refuses with EDGE_NO_PREVIOUS_VERSION.
   */
  async #goBack(name: string, to: RolloutVersion | undefined): Promise<VersionSummary> {
    const rt = this.#deps.runtime();
    const previousInRuntime = (rt.list() as { name: string; previous?: { version: string } }[]).find((m) => m.name === name)?.previous?.version;
    if (!to || previousInRuntime === to.version) return rt.rollback(name);
    return rt.activate(name, to.dir);
  }

  /** Marks the candidate rolled back: the record keeps the committed version, the version is refused from now on. */
  #refuse(s: RolloutRecord, reason: string, evidence: unknown): void {
    const c = s.candidate;
    if (!c) return;
    this.#records.put({ model: s.model, active: s.active, previous: s.previous });
    this.#probations.delete(s.model);
    this.#refused.set(key(s.model, c.version), { reason, at: Date.now() });
    this.#records.event({ model: s.model, version: c.version, step: 'rolled_back', reason, evidence });
    this.#report(s.model, c.version, 'rolled_back', reason, evidence);
    this.#ctx.log.error({ model: s.model, version: c.version, reason, serving: s.active?.version }, 'model version rolled back');
    this.#changed();
  }

  #report(model: string, version: string, step: string, reason: string | undefined, evidence: unknown): void {
    const payload = { kind: 'rollout', model, version, step, reason, evidence, at: new Date().toISOString() };
    this.#deps.record?.(step === 'rolled_back' ? 'alerts' : 'events', payload);
  }

  #changed(): void {
    for (const fn of this.#listeners) fn();
  }

  #activeVersion(name: string): string | undefined {
    return (this.#deps.runtime().list() as { name: string; version?: string }[]).find((m) => m.name === name)?.version;
  }

  #currentFromRuntime(name: string): { version: string; dir: string } | undefined {
    const m = (this.#deps.runtime().list() as { name: string; version?: string; active?: { package?: string } }[]).find((x) => x.name === name);
    return m?.version && m.active?.package ? { version: m.version, dir: m.active.package } : undefined;
  }

  #describe(s: RolloutRecord): Record<string, unknown> {
    return {
      active: s.active?.version,
      previous: s.previous?.version,
      candidate: s.candidate ? { version: s.candidate.version, phase: s.candidate.phase, restarts: s.candidate.boots, probation: this.#probations.get(s.model)?.evidence() } : undefined,
      shadow: this.#shadows.get(s.model) ? { version: this.#shadows.get(s.model)!.version, samples: this.#shadows.get(s.model)!.samples } : undefined,
      field: this.#deps.field?.report(s.model),
      events: this.#records.events(s.model, 10).map((e) => ({ version: e.version, step: e.step, reason: e.reason, evidence: e.evidence, at: new Date(e.at).toISOString() })),
    };
  }
}

const key = (model: string, version: string): string => `${model}@${version}`;

/** The version a package folder declares, read before it is loaded (a crash while loading must count against it). */
function versionOf(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}
