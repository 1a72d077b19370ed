// A row of the devices table as the views read it (FleetStore.devices, device, devicePage, and
// the PostgreSQL store's reads, which select the same column names).
import { storedDocument } from './documents.js';
import type { DeviceRow } from './store.js';

export const DEVICE_COLUMNS = 'device_id, state, status_json, status_at, last_seen, reported_json';
export interface StoredDevice { device_id: string; state: string; status_json: string | null; status_at: number | null; last_seen: number; reported_json: string | null }

export function deviceRow(r: StoredDevice): DeviceRow {
  // Rows are checked as they are read: one written by an older version (or by hand) that
  // does not have the shape the views rely on reads as absent, not as a crash.
  const status = storedDocument('status', r.status_json) ?? null;
  const up = status?.uptimeSeconds;
  const row: DeviceRow = {
    deviceId: r.device_id,
    state: r.state,
    status,
    lastSeen: new Date(r.last_seen).toISOString(),
    reported: storedDocument('reported', r.reported_json) ?? null,
  };
  if (r.state === 'online' && typeof up === 'number' && Number.isFinite(up) && r.status_at !== null) {
    row.uptimeSeconds = Math.round(up + Math.max(0, r.last_seen - r.status_at) / 1000);
  }
  return row;
}
