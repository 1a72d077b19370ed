// The controller's read models: the JSON that `edge-fleet ... --json` prints and the
// dashboard's routes return. Each view returns what its page needs and no more (no raw
// profiles, no telemetry payloads).
import { combinedVerdict, shownVerdict, type ShownVerdict } from '../../agent/drift/verdict.js';
import { deployProblems, type DeployProblem } from '../deploy-problems.js';
import type { DriftReportDoc, StatusDoc } from '../documents.js';
import type { ControllerStore, DeviceRow } from '../store/types.js';
import type { DeviceQuery } from '../device-query.js';
import type { RolloutStatus } from '../rollout/driver.js';
import { fieldSummary } from '../rollout/plan.js';

export interface DeviceSummary {
  deviceId: string;
  online: boolean;
  state: string;
  agentVersion?: string;
  kernelVariant?: string;
  models: { name: string; version: string }[];
  groups: string[];
  lastSeen: string;
  /** The worst verdict of the device's latest windows, as every drift screen shows it (agent/drift/verdict.ts). */
  drift: ShownVerdict;
  /** Deploys that did not land (refused or rolled back), with the device's reason. */
  problems: DeployProblem[];
}

// The store hands out only documents that passed controller/documents.ts: the views can
// rely on those shapes and stay defensive about everything else.
type ReportLike = DriftReportDoc;

async function latestDriftByDevice(store: ControllerStore): Promise<Map<string, ReportLike[]>> {
  const out = new Map<string, ReportLike[]>();
  const seen = new Set<string>();
  for (const r of await store.driftReports(1000)) {
    const rep = r.report as ReportLike;
    if (!rep || typeof rep !== 'object') continue;
    const key = `${r.deviceId}\0${rep.model}\0${rep.version}`;
    if (seen.has(key)) continue; // newest first: keep the latest per device and model version
    seen.add(key);
    const list = out.get(r.deviceId) ?? [];
    list.push(rep);
    out.set(r.deviceId, list);
  }
  return out;
}

/** The worst judged verdict; 'insufficient' (with its reason) only when no window was judged. */
const worst = (reports: ReportLike[]): ShownVerdict => combinedVerdict(reports.map(shownVerdict));

function summarize(d: DeviceRow, drift: Map<string, ReportLike[]>): DeviceSummary {
  const s = (d.status ?? {}) as StatusDoc;
  return {
    deviceId: d.deviceId,
    online: d.state === 'online',
    state: d.state,
    agentVersion: s.agentVersion,
    kernelVariant: s.kernelVariant,
    models: Array.isArray(s.models) ? s.models.map((m) => ({ name: m.name, version: m.version })) : [],
    groups: Array.isArray(s.groups) ? s.groups : [],
    lastSeen: d.lastSeen,
    drift: worst(drift.get(d.deviceId) ?? []),
    problems: deployProblems(d.reported),
  };
}

/** One page of the device table: the store pages, filters and sorts (controller/device-query.ts). */
export async function devicesView(store: ControllerStore, q: DeviceQuery): Promise<{ total: number; offset: number; limit: number; rows: DeviceSummary[] }> {
  const page = await store.devicePage(q);
  const drift = page.rows.length ? await latestDriftByDevice(store) : new Map<string, ReportLike[]>();
  return { total: page.total, offset: page.offset, limit: page.limit, rows: page.rows.map((d) => summarize(d, drift)) };
}

export async function deviceView(store: ControllerStore, deviceId: string): Promise<Record<string, unknown> | undefined> {
  const d = await store.device(deviceId);
  if (!d) return undefined;
  const [drift, telemetry, commands] = await Promise.all([latestDriftByDevice(store), store.telemetrySummary(deviceId), store.commands(deviceId)]);
  return {
    ...summarize(d, drift),
    uptimeSeconds: d.uptimeSeconds,
    reported: d.reported,
    telemetry,
    commands: commands.slice(-20).map((c) => ({ id: c.id, name: c.name, ok: c.ok })),
    drift: (drift.get(deviceId) ?? []).map(driftBrief),
  };
}

function driftBrief(r: ReportLike): Record<string, unknown> {
  const shown = shownVerdict(r);
  return {
    model: r.model,
    version: r.version,
    verdict: shown,
    windowEnd: r.window?.end,
    windowSize: r.window?.size,
    // A window too small to judge: no scores that would read as alarms.
    features: !shown.scores ? [] : (r.features ?? []).map((f) => ({ name: f.name, verdict: f.verdict, score: f.score, reasons: f.reasons, histogram: (f as { histogram?: unknown }).histogram })),
  };
}

export interface FleetDriftView {
  model: string;
  version: string;
  devices: { deviceId: string; verdict: ShownVerdict; windowEnd?: string }[];
  /** Per feature: the highest and the mean score over devices, and how many devices call it drifted. */
  features: { name: string; maxScore: number; meanScore: number; drifting: number; devices: number }[];
  verdict: ShownVerdict;
}

export async function fleetDriftView(store: ControllerStore): Promise<FleetDriftView[]> {
  const byVersion = new Map<string, { model: string; version: string; reports: { deviceId: string; rep: ReportLike }[] }>();
  for (const [deviceId, reps] of await latestDriftByDevice(store)) {
    for (const rep of reps) {
      const key = `${rep.model}@${rep.version}`;
      const entry = byVersion.get(key) ?? { model: String(rep.model), version: String(rep.version), reports: [] };
      entry.reports.push({ deviceId, rep });
      byVersion.set(key, entry);
    }
  }
  return [...byVersion.values()].map(({ model, version, reports }) => {
    const features = new Map<string, { scores: number[]; drifting: number }>();
    for (const { rep } of reports) {
      // Windows too small to judge add no scores (they would read as alarms).
      if (!shownVerdict(rep).scores) continue;
      for (const f of rep.features ?? []) {
        const e = features.get(f.name) ?? { scores: [], drifting: 0 };
        e.scores.push(typeof f.score === 'number' ? f.score : 0);
        if (f.verdict === 'drift' || f.verdict === 'alert') e.drifting++;
        features.set(f.name, e);
      }
    }
    return {
      model,
      version,
      devices: reports.map(({ deviceId, rep }) => ({ deviceId, verdict: shownVerdict(rep), windowEnd: rep.window?.end })),
      features: [...features.entries()].map(([name, e]) => ({
        name,
        maxScore: Math.max(...e.scores),
        meanScore: e.scores.reduce((a, b) => a + b, 0) / e.scores.length,
        drifting: e.drifting,
        devices: e.scores.length,
      })).sort((a, b) => b.maxScore - a.maxScore),
      verdict: worst(reports.map((r) => r.rep)),
    };
  });
}

/** Telemetry records received per minute over the last hour, per stream. */
export async function telemetryVolumeView(store: ControllerStore, now = Date.now()): Promise<{ minutes: string[]; streams: Record<string, number[]> }> {
  const since = now - 60 * 60_000;
  const rows = await store.telemetryVolume(since);
  const first = Math.floor(since / 60_000) + 1;
  const last = Math.floor(now / 60_000);
  const minutes: string[] = [];
  for (let m = first; m <= last; m++) minutes.push(new Date(m * 60_000).toISOString().slice(11, 16));
  const streams: Record<string, number[]> = {};
  for (const r of rows) {
    streams[r.stream] ??= new Array(minutes.length).fill(0);
    const i = r.minute - first;
    if (i >= 0 && i < minutes.length) streams[r.stream][i] = r.records;
  }
  return { minutes, streams };
}

export function rolloutsView(statuses: RolloutStatus[]): Record<string, unknown>[] {
  return statuses.map((s) => ({
    id: s.rollout.id,
    model: s.rollout.model,
    version: s.rollout.version,
    group: s.rollout.group,
    state: s.rollout.state,
    reason: s.rollout.reason,
    stage: s.rollout.stageIndex + 1,
    stages: s.stages.map((st, i) => ({
      percent: st.percent,
      current: i === s.rollout.stageIndex,
      devices: st.devices.map((d) => ({ id: d.id, state: d.state, version: d.version, reason: d.reason })),
    })),
    gates: s.rollout.gates,
    ...(s.field ? { field: s.field, fieldSummary: fieldSummary(s.field) } : {}),
  }));
}

/**
 * The rollouts for the dashboard's live stream: each stage's devices as counts by what they
 * report, not one entry per device (a rollout to 10,000 devices would send them all every
 * update). `edge-fleet rollout status` keeps the device list (rolloutsView).
 */
export function rolloutsSummaryView(statuses: RolloutStatus[]): Record<string, unknown>[] {
  return rolloutsView(statuses).map((r) => ({
    ...r,
    stages: (r.stages as { percent: number; current: boolean; devices: { state: string }[] }[]).map((s) => {
      const counts: Record<string, number> = {};
      for (const d of s.devices) counts[d.state] = (counts[d.state] ?? 0) + 1;
      return { percent: s.percent, current: s.current, total: s.devices.length, counts };
    }),
  }));
}
