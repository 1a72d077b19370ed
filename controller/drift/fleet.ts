// The fleet profile: every device's latest window of one model version, merged (histograms and
// counts exactly, sketches within their error), then compared with the model's reference.
import { compareProfiles, type Comparison } from '../../agent/drift/compare.js';
import { Profile } from '../../agent/drift/profile.js';
import { loadReference } from '../../agent/drift/reference.js';
import { latestPerDevice, type StoredDriftRow } from './rank.js';

export interface FleetDrift extends Comparison {
  model: string;
  version: string;
  devices: string[];
  /** Observations merged (sum of the windows' sizes). */
  rows: number;
  /** Devices whose profile could not be merged (different features: a report from another reference). */
  skipped: { deviceId: string; why: string }[];
}

export function fleetProfile(rows: StoredDriftRow[], model: string, version: string): { profile: Profile | undefined; devices: string[]; skipped: FleetDrift['skipped'] } {
  const g = [...latestPerDevice(rows).values()].find((x) => x.model === model && x.version === version);
  let profile: Profile | undefined;
  const devices: string[] = [];
  const skipped: FleetDrift['skipped'] = [];
  for (const [deviceId, { report }] of g?.latest ?? []) {
    try {
      const p = Profile.decode(report.profile, `profile from ${deviceId}`);
      if (!profile) profile = p;
      else profile.merge(p);
      devices.push(deviceId);
    } catch (err) {
      skipped.push({ deviceId, why: (err as Error).message });
    }
  }
  return { profile, devices, skipped };
}

/** The fleet-wide verdict for one model version against its reference (the package's `drift` field). */
export function fleetDrift(rows: StoredDriftRow[], model: string, version: string, reference: unknown): FleetDrift | undefined {
  const { spec, profile: ref, calibration } = loadReference(reference, `drift reference of ${model}@${version}`);
  const { profile, devices, skipped } = fleetProfile(rows, model, version);
  if (!profile) return undefined;
  // A window of the fleet, compared like a device's window (the same features, the reference's
  // edges, the same verdict function), against the null at the merged size: a fleet of many
  // windows is held to the tighter levels its size allows.
  const cmp = compareProfiles(ref, profile, spec.features.map((f) => f.from), spec.thresholds, calibration);
  return { ...cmp, model, version, devices, rows: profile.rows, skipped };
}
