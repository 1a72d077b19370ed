// The drift report: what one closed window looked like against the reference. It goes to the
// telemetry buffer (stream "drift"), to GET /v1/drift, and to the controller, which merges the
// `profile` of many devices into a fleet profile. docs/drift.md explains how to read it.
import type { FeatureResult } from './compare.js';
import type { EncodedProfile } from './profile.js';
import type { DriftThresholds } from './spec.js';

export type ReportVerdict = 'ok' | 'warn' | 'alert' | 'insufficient';

export interface DetectorEvent {
  /** When the detector fired (ISO 8601). */
  at: string;
  /** The scalar stream watched: top-class confidence, inference latency (ms), failed inferences (0/1), feedback accuracy (0/1). */
  stream: 'confidence' | 'latency' | 'errors' | 'accuracy';
  detector: 'adwin' | 'page-hinkley';
  /** Page-Hinkley: which way the mean moved. ADWIN: compared with the mean before. */
  direction?: 'up' | 'down';
  /** ADWIN: mean of the window kept after the cut. */
  mean?: number;
}

export interface DriftReport {
  format: 'edge-drift-report/1';
  deviceId: string;
  model: string;
  version: string;
  window: {
    /** Window number since the agent started, per model version. */
    seq: number;
    start: string;
    end: string;
    /** Observations profiled (batch items). */
    size: number;
    /** The smallest window judged (config drift.minWindowSize); smaller ones are 'insufficient'. */
    minSize?: number;
    /** Inferences seen, sampled or not. */
    inferences: number;
    closedBy: 'count' | 'time' | 'stop' | 'request';
  };
  verdict: ReportVerdict;
  /** Why there is no verdict (verdict 'insufficient'). */
  reason?: string;
  dataset: { drifted: boolean; share: number; driftedFeatures: string[]; inputFeatures: number };
  prediction: { drifted: boolean; driftedFeatures: string[] };
  /** The level each statistic's p-value was held to (after the Sidak correction over `tests` tests). */
  alpha: { warn: number; alert: number; tests: number };
  features: FeatureResult[];
  events: DetectorEvent[];
  /** Detector events beyond the 64 a report keeps. */
  eventsDropped?: number;
  thresholds: DriftThresholds;
  /** The window profile itself (mergeable): the controller sums these into a fleet profile. Absent when the buffer refused the full report. */
  profile: EncodedProfile;
  /** Why the profile is missing (the telemetry buffer refused the report with it). */
  profileOmitted?: string;
}

/** What goes to the "alerts" stream for an alert-level window: small, no profile. */
export interface DriftAlert {
  kind: 'drift';
  deviceId: string;
  model: string;
  version: string;
  window: DriftReport['window'];
  dataset: DriftReport['dataset'];
  prediction: DriftReport['prediction'];
  /** The worst features, highest score first. */
  top: { name: string; score: number; reasons: string[] }[];
}

export function alertOf(r: DriftReport): DriftAlert {
  const top = r.features.filter((f) => f.verdict === 'drift').sort((a, b) => b.score - a.score).slice(0, 5)
    .map((f) => ({ name: f.name, score: f.score, reasons: f.reasons }));
  return { kind: 'drift', deviceId: r.deviceId, model: r.model, version: r.version, window: r.window, dataset: r.dataset, prediction: r.prediction, top };
}
