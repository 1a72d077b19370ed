// Which devices and which features drift most, per model version, from the stored reports.
import type { DriftReport } from '../../agent/drift/report.js';
import { shownVerdict } from '../../agent/drift/verdict.js';

/** A row as FleetStore.driftReports() returns it. */
export interface StoredDriftRow {
  deviceId: string;
  seq: number;
  ts: number;
  report: unknown;
}

export interface VersionRanking {
  model: string;
  version: string;
  /** Devices with a report for this version, worst first (by their latest window). */
  devices: { deviceId: string; verdict: string; score: number; worstFeature: string; windowEnd: string; windows: number }[];
  /** Features, worst first: the highest score on any device's latest window, and how many devices see them drift. */
  features: { name: string; maxScore: number; driftingDevices: number; worstDevice: string }[];
}

export function isDriftReport(x: unknown): x is DriftReport {
  const r = x as DriftReport;
  return Boolean(r && typeof r === 'object' && r.format === 'edge-drift-report/1' && typeof r.model === 'string' && typeof r.version === 'string' && Array.isArray(r.features));
}

const key = (model: string, version: string) => `${model}\0${version}`;

/** Per model version: each device's most recent report (by window end), and its report count. */
export function latestPerDevice(rows: StoredDriftRow[]): Map<string, { model: string; version: string; latest: Map<string, { report: DriftReport; windows: number }> }> {
  const out = new Map<string, { model: string; version: string; latest: Map<string, { report: DriftReport; windows: number }> }>();
  for (const row of rows) {
    const r = row.report;
    if (!isDriftReport(r)) continue;
    const k = key(r.model, r.version);
    let g = out.get(k);
    if (!g) out.set(k, (g = { model: r.model, version: r.version, latest: new Map() }));
    const device = row.deviceId ?? r.deviceId;
    const prev = g.latest.get(device);
    if (!prev) g.latest.set(device, { report: r, windows: 1 });
    else {
      prev.windows++;
      if (r.window.end > prev.report.window.end || (r.window.end === prev.report.window.end && r.window.seq > prev.report.window.seq)) prev.report = r;
    }
  }
  return out;
}

export function rankDrift(rows: StoredDriftRow[], filter: { model?: string; version?: string } = {}): VersionRanking[] {
  const out: VersionRanking[] = [];
  for (const g of latestPerDevice(rows).values()) {
    if ((filter.model && g.model !== filter.model) || (filter.version && g.version !== filter.version)) continue;
    const devices: VersionRanking['devices'] = [];
    const features = new Map<string, VersionRanking['features'][number]>();
    for (const [deviceId, { report, windows }] of g.latest) {
      let worst = { name: '-', score: 0 };
      // A window too small to judge contributes no scores (they would read as alarms).
      for (const f of shownVerdict(report).scores ? report.features : []) {
        if (f.score > worst.score) worst = { name: f.name, score: f.score };
        const agg = features.get(f.name) ?? { name: f.name, maxScore: 0, driftingDevices: 0, worstDevice: deviceId };
        if (f.score > agg.maxScore) {
          agg.maxScore = f.score;
          agg.worstDevice = deviceId;
        }
        if (f.verdict === 'drift') agg.driftingDevices++;
        features.set(f.name, agg);
      }
      devices.push({ deviceId, verdict: report.verdict, score: worst.score, worstFeature: worst.name, windowEnd: report.window.end, windows });
    }
    devices.sort((a, b) => b.score - a.score || a.deviceId.localeCompare(b.deviceId));
    out.push({ model: g.model, version: g.version, devices, features: [...features.values()].sort((a, b) => b.maxScore - a.maxScore || a.name.localeCompare(b.name)) });
  }
  return out.sort((a, b) => a.model.localeCompare(b.model) || a.version.localeCompare(b.version));
}
