// Drift detection on the device (docs/drift.md).
//   buildReference(samples, spec)  - edge-model pack --calib: the manifest's `drift` field
//   DriftMonitor                   - the agent component; monitor.observe(model, version, inputs, outputs, meta?)
//   observe(...)                   - the same as a module-level hook, feeding every started monitor
export { buildReference, loadReference, quantileEdges, type DriftReference, type DriftSample } from './reference.js';
export { DriftMonitor, observe, type DriftMonitorOptions, type InferenceMeta, type RecordFn } from './monitor.js';
export { compareProfiles, type Comparison, type FeatureResult, type FeatureStats } from './compare.js';
export { Profile, NumericProfile, CategoricalProfile, type EncodedProfile } from './profile.js';
export { alertOf, type DriftReport, type DriftAlert, type DetectorEvent, type ReportVerdict } from './report.js';
export { shownVerdict, combinedVerdict, judgeWindow, verdictText, type DriftVerdict, type ShownVerdict } from './verdict.js';
export { DEFAULT_THRESHOLDS, mergeThresholds, type DriftSpec, type DriftThresholds, type FeatureDecl, type ResolvedSpec } from './spec.js';
export { Adwin, PageHinkley } from './detectors.js';
export { FixedHistogram } from './histogram.js';
export { KllSketch } from './kll.js';
export { CategoryCounts } from './categories.js';
export * as stats from './stats.js';
