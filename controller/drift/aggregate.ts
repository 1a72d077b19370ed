// What `edge-fleet drift` prints: one row per model version, the fleet verdict first, then
// the worst devices and features (the table cuts cells at 60 characters; --json has it all).
import { combinedVerdict, judgeWindow, shownVerdict, verdictText } from '../../agent/drift/verdict.js';
import { describe } from '../../protocol/errors.js';
import type { FleetStore } from '../store.js';
import { fleetDrift } from './fleet.js';
import { latestPerDevice, rankDrift, type StoredDriftRow } from './rank.js';
import { referenceFromStore } from './reference.js';

export interface DriftSummaryRow {
  model: string;
  version: string;
  devices: number;
  /** The devices' latest windows, the worst judged one (what the dashboard shows for this version). */
  verdict: string;
  /** Fleet-wide verdict (merged profiles vs the reference), or why there is none. */
  fleet: string;
  fleetDrifted: string;
  worstDevices: string;
  worstFeatures: string;
}

export async function aggregateDrift(rows: StoredDriftRow[], store?: FleetStore): Promise<DriftSummaryRow[]> {
  const out: DriftSummaryRow[] = [];
  const latest = latestPerDevice(rows);
  for (const v of rankDrift(rows)) {
    const reports = [...(latest.get(`${v.model}\0${v.version}`)?.latest.values() ?? [])].map((x) => x.report);
    const deviceVerdict = (id: string) => shownVerdict(latest.get(`${v.model}\0${v.version}`)?.latest.get(id)?.report);
    let fleet = 'no reference (package not published here)';
    let fleetDrifted = '-';
    try {
      const ref = store ? await referenceFromStore(store, v.model, v.version) : undefined;
      const f = ref && fleetDrift(rows, v.model, v.version, ref);
      if (f) {
        // The merged window is held to the devices' minimum window size, like each device's.
        const minSize = Math.max(0, ...reports.map((r) => (typeof r.window.minSize === 'number' ? r.window.minSize : 0)));
        const judged = judgeWindow(f.verdict, f.rows, minSize, 'fleet window');
        const noneJudged = reports.every((r) => shownVerdict(r).verdict === 'insufficient');
        if (judged.verdict === 'insufficient' || noneJudged) {
          fleet = `insufficient (${f.rows} rows): ${judged.reason ?? 'no device window was large enough to judge'}`;
        } else {
          fleet = `${f.verdict} (${f.rows} rows, share ${f.dataset.share.toFixed(2)})`;
          fleetDrifted = [...f.dataset.driftedFeatures, ...f.prediction.driftedFeatures].join(', ') || 'none';
        }
      }
    } catch (err) {
      fleet = `error: ${describe(err)}`;
    }
    out.push({
      model: v.model,
      version: v.version,
      devices: v.devices.length,
      verdict: verdictText(combinedVerdict(reports.map(shownVerdict))),
      fleet,
      fleetDrifted,
      // A device whose window was too small to judge is listed without a score (it would read as an alarm).
      worstDevices: v.devices.slice(0, 3).map((d) => {
        const shown = deviceVerdict(d.deviceId);
        return shown.scores ? `${d.deviceId} ${d.verdict} ${d.score}` : `${d.deviceId} ${shown.verdict}`;
      }).join(', '),
      worstFeatures: v.features.filter((f) => f.maxScore > 0).slice(0, 3).map((f) => `${f.name} ${f.maxScore} (${f.driftingDevices} dev)`).join(', ') || '-',
    });
  }
  return out;
}
