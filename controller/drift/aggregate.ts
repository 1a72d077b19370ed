// What `edge-fleet drift` prints: one row per model version, the fleet verdict first, then
// the worst devices and features (the table cuts cells at 60 characters; --json has it all).
import { describe } from '../../protocol/errors.js';
import type { FleetStore } from '../store.js';
import { fleetDrift } from './fleet.js';
import { rankDrift, type StoredDriftRow } from './rank.js';
import { referenceFromStore } from './reference.js';

export interface DriftSummaryRow {
  model: string;
  version: string;
  devices: number;
  /** Fleet-wide verdict (merged profiles vs the reference), or why there is none. */
  fleet: string;
  fleetDrifted: string;
  worstDevices: string;
  worstFeatures: string;
}

export async function aggregateDrift(rows: StoredDriftRow[], store?: FleetStore): Promise<DriftSummaryRow[]> {
  const out: DriftSummaryRow[] = [];
  for (const v of rankDrift(rows)) {
    let fleet = 'no reference (package not published here)';
    let fleetDrifted = '-';
    try {
      const ref = store ? await referenceFromStore(store, v.model, v.version) : undefined;
      const f = ref && fleetDrift(rows, v.model, v.version, ref);
      if (f) {
        fleet = `${f.verdict} (${f.rows} rows, share ${f.dataset.share.toFixed(2)})`;
        fleetDrifted = [...f.dataset.driftedFeatures, ...f.prediction.driftedFeatures].join(', ') || 'none';
      }
    } catch (err) {
      fleet = `error: ${describe(err)}`;
    }
    out.push({
      model: v.model,
      version: v.version,
      devices: v.devices.length,
      fleet,
      fleetDrifted,
      worstDevices: v.devices.slice(0, 3).map((d) => `${d.deviceId} ${d.verdict} ${d.score}`).join(', '),
      worstFeatures: v.features.slice(0, 3).map((f) => `${f.name} ${f.maxScore} (${f.driftingDevices} dev)`).join(', '),
    });
  }
  return out;
}
