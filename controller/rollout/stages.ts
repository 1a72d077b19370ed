// Which devices a rollout stage covers: a stable hash of the device id, so a device chosen at
// 1% stays chosen at 10%, 50% and 100%, and a controller restart picks the same devices.
import { createHash } from 'node:crypto';

/** The device's position in [0, 100) for this rollout. */
export function devicePercentile(rolloutId: string, deviceId: string): number {
  const h = createHash('sha256').update(rolloutId).update('\0').update(deviceId).digest();
  return (h.readUInt32BE(0) / 0x1_0000_0000) * 100;
}

/**
 * The devices in a stage: every device whose percentile is below the stage's percent, at most
 * percent of the group (rounded up) and at least one. Without the cap, 25% of a 4-device group
 * was all 4 in 1 rollout of 256 (each device's hash below 25), and the canary was the fleet.
 */
export function devicesInStage(rolloutId: string, deviceIds: string[], percent: number): string[] {
  const ranked = deviceIds
    .map((id) => ({ id, p: devicePercentile(rolloutId, id) }))
    .sort((a, b) => a.p - b.p || (a.id < b.id ? -1 : 1));
  const cap = Math.ceil((ranked.length * percent) / 100);
  const chosen = ranked.filter((d) => d.p < percent).slice(0, cap).map((d) => d.id);
  // A small fleet at 1% would otherwise get nobody: the canary is always at least one device.
  if (chosen.length === 0 && ranked.length > 0 && percent > 0) chosen.push(ranked[0].id);
  return chosen;
}

/** Parses "1,10,50,100": increasing percents ending at 100. */
export function parseStages(text: string): number[] {
  const stages = text.split(',').map((s) => Number(s.trim()));
  if (stages.length === 0 || stages.some((s) => !Number.isFinite(s) || s <= 0 || s > 100)) {
    throw new Error(`--stages must be a comma-separated list of percents in (0, 100], got "${text}"`);
  }
  for (let i = 1; i < stages.length; i++) {
    if (stages[i] <= stages[i - 1]) throw new Error(`--stages must increase, got "${text}"`);
  }
  if (stages[stages.length - 1] !== 100) throw new Error(`--stages must end at 100, got "${text}"`);
  return stages;
}
