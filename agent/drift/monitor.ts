// The drift monitor: the agent component the model runtime feeds after each inference. It keeps
// one DriftWindow per model version that has a drift reference, closes windows at N inferences
// or T seconds, records each report to the telemetry buffer (stream "drift"; "alerts" too for an
// alert-level verdict), serves the latest per model on GET /v1/drift and exports gauges.
import type { AgentContext, Component } from '../component.js';
import type { Config } from '../config/schema.js';
import { Errors, describe } from '../errors.js';
import { prom } from '../metrics.js';
import type { TensorMap } from '../runtime/backend.js';
import { loadReference } from './reference.js';
import { alertOf, type DetectorEvent, type DriftReport } from './report.js';
import { mergeThresholds } from './spec.js';
import { DriftWindow } from './window.js';
import { shownVerdict } from './verdict.js';

/** The telemetry buffer's record(), injected (so the monitor runs without one in tests and tools). */
export type RecordFn = (stream: string, payload: unknown, opts?: { priority?: number; ttlSeconds?: number; durable?: 'normal' | 'full' }) => unknown;

export interface InferenceMeta {
  /** Inference time (ms): watched for change by ADWIN and Page-Hinkley. */
  latencyMs?: number;
  /** The inference failed: counts toward the error-rate detector; nothing else is profiled. */
  failed?: boolean;
}

export interface DriftMonitorOptions {
  record?: RecordFn;
  /** Where the monitor finds a model version's drift reference (the manifest's `drift` field) the first time it sees it. */
  referenceOf?: (model: string, version: string) => unknown;
  /** Clock (ms since the epoch); tests pass their own. */
  now?: () => number;
}

const VERDICT_LEVEL = { insufficient: -1, ok: 0, warn: 1, alert: 2 } as const;
const FEATURE_LEVEL = { ok: 0, warn: 1, drift: 2 } as const;

export class DriftMonitor implements Component {
  readonly name = 'drift';
  readonly #ctx: AgentContext;
  readonly #opts: DriftMonitorOptions;
  readonly #cfg: Config['drift'];
  readonly #now: () => number;
  /** model -> version -> window (null: looked up, has no reference). */
  readonly #windows = new Map<string, Map<string, DriftWindow | null>>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #routes = false;
  #errors = 0;
  #recordErrors = 0;
  #gauges: ReturnType<typeof makeMetrics> | undefined;

  constructor(ctx: AgentContext, opts: DriftMonitorOptions = {}) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#cfg = ctx.config.drift;
    this.#now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    if (!this.#gauges) this.#gauges = makeMetrics(this.#ctx.metrics);
    if (!this.#routes) {
      this.#addRoutes();
      this.#routes = true;
    }
    this.#running = this.#cfg.enabled;
    const tick = Math.min(1000, (this.#cfg.windowSeconds * 1000) / 4);
    this.#timer = setInterval(() => this.closeExpired(), tick);
    this.#timer.unref();
    activeMonitors.add(this);
  }

  async stop(): Promise<void> {
    activeMonitors.delete(this);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    // Report what the open windows hold rather than losing it (telemetry stops after us).
    if (this.#running) {
      for (const w of this.#all()) if (w.current.rows >= this.#cfg.minWindowSize) this.#close(w, 'stop');
    }
    this.#running = false;
  }

  status(): unknown {
    const models: Record<string, unknown> = {};
    for (const w of this.#all()) {
      models[`${w.model}@${w.version}`] = {
        windowSize: w.current.rows,
        windowOpenSeconds: Math.round((this.#now() - w.start) / 1000),
        lastVerdict: w.latest?.verdict,
        lastWindowEnd: w.latest?.window.end,
      };
    }
    return { enabled: this.#cfg.enabled, models, observeErrors: this.#errors, recordErrors: this.#recordErrors };
  }

  /**
   * Starts monitoring a model version against its reference (the package manifest's `drift`
   * field, as written by buildReference). Throws EDGE_DRIFT_SPEC_INVALID for a bad reference.
   */
  attach(model: string, version: string, reference: unknown): void {
    const ref = loadReference(reference, `drift reference of ${model}@${version}`);
    const thresholds = mergeThresholds(ref.spec.thresholds, this.#cfg.thresholds);
    const w = new DriftWindow(model, version, ref.spec, ref, thresholds, this.#cfg, this.#now());
    w.onEvent = (e) => this.#gauges?.events.inc({ model, version, stream: e.stream, detector: e.detector });
    let byVersion = this.#windows.get(model);
    if (!byVersion) this.#windows.set(model, (byVersion = new Map()));
    byVersion.set(version, w);
  }

  /** Stops monitoring a model version (or all versions of a model); its open window is dropped. */
  detach(model: string, version?: string): void {
    if (version === undefined) this.#windows.delete(model);
    else this.#windows.get(model)?.delete(version);
  }

  /**
   * Called by the model runtime after each inference. Cheap: a map lookup, the sampling counter,
   * then one pass over the tensors into preallocated memory. Never throws.
   */
  observe(model: string, version: string, inputs: TensorMap, outputs: TensorMap, meta?: InferenceMeta): void {
    if (!this.#running) return;
    let w = this.#windows.get(model)?.get(version);
    if (w === undefined) w = this.#lookup(model, version);
    if (w === null) return;
    // Everything past the sampling counter runs on sampled inferences only (the cost budget).
    w.inferences++;
    if (++w.seen % this.#cfg.sampleEvery !== 0) return;
    try {
      const now = this.#now();
      if (meta?.latencyMs !== undefined) w.watch('latency', meta.latencyMs, now);
      w.watch('errors', meta?.failed ? 1 : 0, now);
      if (meta?.failed) return;
      if (w.add(inputs, outputs, now)) this.#close(w, 'count');
    } catch (err) {
      if (this.#errors++ === 0) this.#ctx.log.warn({ model, version, err: describe(err) }, 'drift: could not profile an inference (further errors are only counted)');
    }
  }

  /** Labelled feedback from the application: was the model's answer right? Feeds the accuracy detector. */
  feedback(model: string, version: string | undefined, correct: boolean): void {
    const byVersion = this.#windows.get(model);
    const w = version === undefined ? [...(byVersion?.values() ?? [])].find((x) => x) : byVersion?.get(version);
    if (!w) throw Errors.NOT_FOUND(`no drift monitoring for model ${model}${version ? `@${version}` : ''} (its package has no drift reference, or it is not loaded)`);
    w.watch('accuracy', correct ? 1 : 0, this.#now());
  }

  /** Closes the window of a model version now (or of every version); returns the reports. */
  closeWindow(model?: string, version?: string, closedBy: DriftReport['window']['closedBy'] = 'request'): DriftReport[] {
    const out: DriftReport[] = [];
    for (const w of this.#all()) {
      if ((model === undefined || w.model === model) && (version === undefined || w.version === version)) out.push(this.#close(w, closedBy));
    }
    return out;
  }

  /** Closes windows older than windowSeconds (the timer calls this). Empty windows just restart. */
  closeExpired(): void {
    const now = this.#now();
    for (const w of this.#all()) {
      if (now - w.start < this.#cfg.windowSeconds * 1000) continue;
      if (w.current.rows === 0) w.start = now;
      else this.#close(w, 'time');
    }
  }

  /** The latest report of each model (its most recently reported version). */
  latest(): Record<string, DriftReport> {
    const out: Record<string, DriftReport> = {};
    for (const w of this.#all()) {
      const r = w.latest;
      if (r && (!out[w.model] || out[w.model].window.end < r.window.end)) out[w.model] = r;
    }
    return out;
  }

  #lookup(model: string, version: string): DriftWindow | null {
    let ref: unknown;
    try {
      ref = this.#opts.referenceOf?.(model, version);
      if (ref && typeof ref === 'object' && Object.keys(ref).length > 0) {
        this.attach(model, version, ref);
        return this.#windows.get(model)!.get(version)!;
      }
    } catch (err) {
      this.#ctx.log.warn({ model, version, err: describe(err) }, 'drift: the model package has an unusable drift reference; drift is not monitored for it');
    }
    let byVersion = this.#windows.get(model);
    if (!byVersion) this.#windows.set(model, (byVersion = new Map()));
    byVersion.set(version, null);
    return null;
  }

  *#all(): Iterable<DriftWindow> {
    for (const byVersion of this.#windows.values()) for (const w of byVersion.values()) if (w) yield w;
  }

  #close(w: DriftWindow, closedBy: DriftReport['window']['closedBy']): DriftReport {
    const report = w.close(closedBy, this.#now(), this.#ctx.config.deviceId);
    this.#export(report);
    const record = this.#opts.record;
    if (record) {
      this.#record(record, 'drift', report, () => ({ ...report, profile: undefined, profileOmitted: 'the report with its profile was refused by the telemetry buffer (too large?)' }));
      if (report.verdict === 'alert') this.#record(record, 'alerts', alertOf(report));
    }
    if (report.verdict === 'alert') {
      this.#ctx.log.warn({ model: w.model, version: w.version, drifted: report.dataset.driftedFeatures, prediction: report.prediction.driftedFeatures }, 'drift: alert');
    }
    return report;
  }

  /**
   * Records to the telemetry buffer; when it refuses (a report of many features can exceed
   * telemetry.maxRecordBytes), sends the smaller fallback instead: verdicts without the profile.
   * The full report stays in memory for /v1/drift either way.
   */
  #record(record: RecordFn, stream: string, payload: unknown, fallback?: () => unknown): void {
    try {
      record(stream, payload);
      return;
    } catch (err) {
      this.#recordErrors++;
      this.#ctx.log.warn({ stream, err: describe(err) }, `drift: the telemetry buffer refused a record${fallback ? '; sending it without the profile' : ''}`);
    }
    if (!fallback) return;
    try {
      record(stream, fallback());
    } catch (err) {
      this.#ctx.log.warn({ stream, err: describe(err) }, 'drift: the telemetry buffer refused the smaller record too');
    }
  }

  #export(r: DriftReport): void {
    const g = this.#gauges;
    if (!g) return;
    const base = { model: r.model, version: r.version };
    g.verdict.set(base, VERDICT_LEVEL[r.verdict]);
    g.share.set(base, r.dataset.share);
    g.windowSize.set(base, r.window.size);
    g.windows.inc({ ...base, verdict: r.verdict });
    for (const f of r.features) {
      const fb = { ...base, feature: f.name };
      g.featureVerdict.set(fb, FEATURE_LEVEL[f.verdict]);
      for (const [stat, v] of Object.entries(f.stats)) {
        if (typeof v === 'number' && stat !== 'chiSquareDf') g.score.set({ ...fb, statistic: stat }, Number.isFinite(v) ? v : 1e9);
      }
    }
  }

  #addRoutes(): void {
    const app = this.#ctx.http;
    app.get<{ Querystring: { model?: string; profile?: string } }>('/v1/drift', async (req) => {
      const { model, profile } = req.query;
      const withProfile = profile === '1' || profile === 'true';
      let reports = this.latest();
      if (model !== undefined) {
        if (!this.#windows.has(model)) throw Errors.NOT_FOUND(`no drift monitoring for model ${model}`);
        reports = reports[model] ? { [model]: reports[model] } : {};
      }
      const out: Record<string, unknown> = {};
      // `shown`: the verdict as every screen shows it (agent/drift/verdict.ts); the device page prints it as is.
      for (const [name, r] of Object.entries(reports)) out[name] = { ...r, profile: withProfile ? r.profile : undefined, shown: shownVerdict(r) };
      return { models: out, monitored: [...this.#all()].map((w) => ({ model: w.model, version: w.version, windowSize: w.current.rows })) };
    });
    app.post<{ Body: { model?: unknown; version?: unknown; correct?: unknown } }>('/v1/drift/feedback', async (req) => {
      const b = req.body ?? {};
      if (typeof b.model !== 'string' || typeof b.correct !== 'boolean' || (b.version !== undefined && typeof b.version !== 'string')) {
        throw Errors.BAD_REQUEST('expected a JSON body {"model": "<name>", "version"?: "<version>", "correct": true|false}');
      }
      this.feedback(b.model, b.version as string | undefined, b.correct);
      return { accepted: true };
    });
  }
}

function makeMetrics(registry: AgentContext['metrics']) {
  const registers = [registry];
  return {
    verdict: new prom.Gauge({ name: 'edge_drift_verdict', help: 'Verdict of the last drift window: -1 insufficient, 0 ok, 1 warn, 2 alert', labelNames: ['model', 'version'], registers }),
    share: new prom.Gauge({ name: 'edge_drift_dataset_share', help: 'Share of input features that drifted in the last window', labelNames: ['model', 'version'], registers }),
    windowSize: new prom.Gauge({ name: 'edge_drift_window_size', help: 'Observations in the last closed drift window', labelNames: ['model', 'version'], registers }),
    featureVerdict: new prom.Gauge({ name: 'edge_drift_feature_verdict', help: 'Per feature verdict of the last window: 0 ok, 1 warn, 2 drift', labelNames: ['model', 'version', 'feature'], registers }),
    score: new prom.Gauge({ name: 'edge_drift_score', help: 'Per feature drift statistic of the last window (psi, jensenShannon, wasserstein, ks, ksPValue, chiSquare, chiSquarePValue)', labelNames: ['model', 'version', 'feature', 'statistic'], registers }),
    windows: new prom.Counter({ name: 'edge_drift_windows_total', help: 'Drift windows closed, by verdict', labelNames: ['model', 'version', 'verdict'], registers }),
    events: new prom.Counter({ name: 'edge_drift_detector_events_total', help: 'Changes flagged by the online detectors', labelNames: ['model', 'version', 'stream', 'detector'], registers }),
  };
}

/** Monitors started in this process; the module-level observe() hook feeds them all. */
const activeMonitors = new Set<DriftMonitor>();

/**
 * The hook for the model runtime: call after each inference. Feeds every started DriftMonitor
 * in the process (one per agent; a monitor ignores models it has no reference for). A runtime
 * that holds its agent's monitor should call monitor.observe() directly instead.
 */
export function observe(model: string, version: string, inputs: TensorMap, outputs: TensorMap, meta?: InferenceMeta): void {
  for (const m of activeMonitors) m.observe(model, version, inputs, outputs, meta);
}

export type { DetectorEvent };
