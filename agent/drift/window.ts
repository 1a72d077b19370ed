// One model version's drift state on the device: the reference, the open window's profile,
// the online detectors, and the last report. Observing writes into preallocated memory only.
import type { TensorMap } from '../runtime/backend.js';
import type { WindowCalibration } from './calibration.js';
import { compareProfiles } from './compare.js';
import { Adwin, PageHinkley } from './detectors.js';
import { FeatureExtractor } from './features.js';
import { judgeWindow } from './verdict.js';
import type { Profile } from './profile.js';
import type { DetectorEvent, DriftReport } from './report.js';
import type { DriftThresholds, ResolvedSpec } from './spec.js';

export interface DetectorSettings {
  adwinDelta: number;
  pageHinkleyDelta: number;
  pageHinkleyThreshold: number;
  pageHinkleyMinSamples: number;
}

export interface WindowSettings {
  windowInferences: number;
  minWindowSize: number;
  sketchK: number;
  detectors: DetectorSettings;
}

const MAX_EVENTS = 64;

class ScalarWatch {
  readonly adwin: Adwin;
  readonly ph: PageHinkley;
  constructor(readonly stream: DetectorEvent['stream'], d: DetectorSettings, withPageHinkley: boolean) {
    this.adwin = new Adwin(d.adwinDelta);
    this.ph = withPageHinkley
      ? new PageHinkley({ delta: d.pageHinkleyDelta, threshold: d.pageHinkleyThreshold, minSamples: d.pageHinkleyMinSamples })
      : (undefined as unknown as PageHinkley);
  }
}

export class DriftWindow {
  readonly model: string;
  readonly version: string;
  readonly spec: ResolvedSpec;
  readonly reference: Profile;
  readonly calibration: WindowCalibration;
  readonly thresholds: DriftThresholds;
  readonly extractor: FeatureExtractor;
  readonly row: Float64Array;
  readonly current: Profile;
  readonly #from: ('input' | 'output')[];
  readonly #confidenceCol: number;
  readonly #settings: WindowSettings;
  readonly #watch: Record<DetectorEvent['stream'], ScalarWatch>;
  #events: DetectorEvent[] = [];
  #droppedEvents = 0;
  start: number;
  seq = 0;
  /** Inferences seen in this window, sampled or not. */
  inferences = 0;
  /** Inferences seen since attach (drives sampling). */
  seen = 0;
  latest: DriftReport | undefined;

  constructor(model: string, version: string, spec: ResolvedSpec, reference: { profile: Profile; calibration: WindowCalibration }, thresholds: DriftThresholds, settings: WindowSettings, now: number) {
    this.model = model;
    this.version = version;
    this.spec = spec;
    this.reference = reference.profile;
    this.calibration = reference.calibration;
    // The configured window size gets its own bootstrap (once) when the package's calibration
    // lacks it; windows closed early by time interpolate between calibrated sizes.
    this.calibration.calibrate([settings.windowInferences]);
    this.thresholds = thresholds;
    this.#settings = settings;
    this.extractor = new FeatureExtractor(spec.features);
    this.row = new Float64Array(this.extractor.width);
    this.current = this.reference.emptyLike(settings.sketchK);
    this.#from = spec.features.map((f) => f.from);
    this.#confidenceCol = spec.features.findIndex((f) => f.extract.op === 'maxprob');
    const d = settings.detectors;
    this.#watch = {
      confidence: new ScalarWatch('confidence', d, true),
      // Page-Hinkley's threshold (50) is in the stream's own units: right for a confidence in
      // [0, 1] (a sustained drop of 0.3 fires after ~170 values), but ordinary jitter of a few ms
      // would trip it on latency. Latency and the 0/1 streams get ADWIN, which scales to the noise.
      latency: new ScalarWatch('latency', d, false),
      errors: new ScalarWatch('errors', d, false),
      accuracy: new ScalarWatch('accuracy', d, false),
    };
    this.start = now;
  }

  /** Profiles every batch item of one inference; true when the window is full. */
  add(inputs: TensorMap, outputs: TensorMap, now: number): boolean {
    const ex = this.extractor, row = this.row;
    const batch = ex.batchSize(inputs, outputs);
    let full = false;
    for (let b = 0; b < batch; b++) {
      ex.extract(inputs, outputs, b, row);
      this.current.add(row);
      if (this.#confidenceCol >= 0) this.watch('confidence', row[this.#confidenceCol], now);
      if (this.current.rows >= this.#settings.windowInferences) full = true;
    }
    return full;
  }

  /** Feeds a scalar stream to its detectors, keeping any event for the next report. */
  watch(stream: DetectorEvent['stream'], x: number, now: number): void {
    const w = this.#watch[stream];
    const before = w.adwin.mean;
    if (w.adwin.update(x)) this.#event({ at: new Date(now).toISOString(), stream, detector: 'adwin', direction: w.adwin.mean > before ? 'up' : 'down', mean: round(w.adwin.mean) });
    if (w.ph) {
      const dir = w.ph.update(x);
      if (dir) this.#event({ at: new Date(now).toISOString(), stream, detector: 'page-hinkley', direction: dir });
    }
  }

  #event(e: DetectorEvent): void {
    if (this.#events.length < MAX_EVENTS) this.#events.push(e);
    else this.#droppedEvents++;
    this.onEvent?.(e);
  }

  onEvent: ((e: DetectorEvent) => void) | undefined;

  /** Closes the window: compares it with the reference, builds the report, starts the next window. */
  close(closedBy: DriftReport['window']['closedBy'], now: number, deviceId: string): DriftReport {
    const size = this.current.rows;
    const cmp = compareProfiles(this.reference, this.current, this.#from, this.thresholds, this.calibration);
    const judged = judgeWindow(cmp.verdict, size, this.#settings.minWindowSize);
    const insufficient = judged.verdict === 'insufficient';
    const report: DriftReport = {
      format: 'edge-drift-report/1',
      deviceId,
      model: this.model,
      version: this.version,
      window: { seq: ++this.seq, start: new Date(this.start).toISOString(), end: new Date(now).toISOString(), size, minSize: this.#settings.minWindowSize, inferences: this.inferences, closedBy },
      verdict: judged.verdict,
      ...(judged.reason ? { reason: judged.reason } : {}),
      // Too small to judge: nothing is said to have drifted anywhere in the report.
      dataset: insufficient ? { ...cmp.dataset, drifted: false, share: 0, driftedFeatures: [] } : cmp.dataset,
      prediction: insufficient ? { ...cmp.prediction, drifted: false, driftedFeatures: [] } : cmp.prediction,
      alpha: cmp.alpha,
      features: insufficient ? cmp.features.map((f) => ({ ...f, verdict: 'ok' as const, score: 0, reasons: [judged.reason!] })) : cmp.features,
      events: this.#events,
      thresholds: this.thresholds,
      profile: this.current.encode(),
    };
    if (this.#droppedEvents) report.eventsDropped = this.#droppedEvents;
    this.#events = [];
    this.#droppedEvents = 0;
    this.current.reset();
    this.inferences = 0;
    this.start = now;
    this.latest = report;
    return report;
  }
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
