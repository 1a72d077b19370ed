// A staged rollout's decisions, as a pure function of the plan and what devices report.
// The controller calls decide() on every report and on a timer, applies the decision
// (assign devices, advance, halt and roll back), and stores the result.
import { devicesInStage } from './stages.js';
import type { FieldReport } from '../../protocol/field-accuracy.js';

export interface Gates {
  /** Halt when more than this fraction of a stage's devices failed or rolled back (0: the first failure halts). */
  maxFailureRate: number;
  /** Fraction of a stage's devices that must have committed before the next stage. */
  minCommitted: number;
  /** When set, devices must report shadow top-1 agreement at least this high... */
  minShadowAgreement?: number;
  /** ...over at least this many shadowed requests. */
  minShadowSamples: number;
  /** Halt when more than this fraction of a stage's devices report an alert-level drift verdict on the new version. */
  maxDriftAlertRate?: number;
  /**
   * When set, the candidate's top-1 accuracy on field-labelled requests minus the baseline's
   * (the version it replaces, scored on the same labelled requests where the device shadows)
   * must be at least this (negative: a small loss is allowed). Summed over the stage's devices.
   */
  minFieldGain?: number;
  /** Labelled requests, summed over the stage's devices, before the stage may advance (and minFieldGain is judged). */
  minFieldLabels?: number;
  /** Least time a stage runs before the next one starts (s). */
  minStageSeconds: number;
  /** A stage that has not passed in this time halts the rollout (s). */
  stageTimeoutSeconds: number;
}

export const DEFAULT_GATES: Gates = {
  maxFailureRate: 0,
  minCommitted: 1,
  minShadowSamples: 500,
  minStageSeconds: 0,
  stageTimeoutSeconds: 3600,
};

/** halting: an operator asked for a halt; the serve loop rolls the devices back, then halted. */
export type RolloutState = 'running' | 'completed' | 'halting' | 'halted';

export interface Rollout {
  id: string;
  model: string;
  version: string;
  /** What devices go back to on a fleet-wide rollback (undefined: each device's own previous version). */
  previousVersion?: string;
  group: string;
  stages: number[];
  gates: Gates;
  stageIndex: number;
  stageStartedAt: number;
  state: RolloutState;
  reason?: string;
  createdAt: number;
}

/** What one device last said about this model (from models/reported). */
export interface DeviceReport {
  version?: string;
  /** downloading | verified | shadow | probation | committed | active | rolled_back | failed ... */
  state: string;
  reason?: string;
  shadow?: { agreement: number; samples: number };
  driftVerdict?: 'ok' | 'warn' | 'alert';
  /** The device's field accuracy per version of this model (labelled answers; older agents send none). */
  field?: FieldReport;
}

/** Labelled requests the field gate needs when minFieldGain is set without minFieldLabels. */
export const DEFAULT_FIELD_LABELS = 100;

/** The field gate's figures over a stage's devices: what the status shows and a halt carries. */
export interface FieldEvidence {
  candidate: { version: string; labelled: number; correct: number; accuracy: number | null };
  /** The version the candidate replaces (the rollout's previousVersion, else whatever else the devices served). */
  baseline: { version: string; labelled: number; correct: number; accuracy: number | null };
  /** candidate accuracy - baseline accuracy; null until both have labels. */
  gain: number | null;
  /** Labelled requests the candidate was scored on, summed over the devices. */
  labels: number;
  /** Whether every counted device scored both versions on the same requests (shadow pairs). */
  paired: boolean;
  /** Devices whose labels were counted. */
  devices: number;
  minFieldGain?: number;
  minFieldLabels: number;
}

/**
 * Field accuracy of the rollout's version against its baseline, summed over the devices'
 * reports. A device that shadowed the candidate counts its pairs (both versions on the same
 * labelled requests); one that did not (A/B, or no shadow phase) counts each version's own;
 * one that has no labels of the candidate does not count.
 */
export function fieldEvidence(r: Rollout, reports: (DeviceReport | undefined)[]): FieldEvidence {
  const cand = { labelled: 0, correct: 0 }, base = { labelled: 0, correct: 0 };
  const baseVersions = new Set<string>();
  let devices = 0, paired = true;
  const isBase = (v: string): boolean => v !== r.version && (r.previousVersion === undefined || v === r.previousVersion);
  for (const rep of reports) {
    const f = rep?.field;
    if (!f) continue;
    const pairs = f.pairs.filter((p) => p.shadow === r.version && isBase(p.primary));
    if (pairs.length) {
      for (const p of pairs) {
        cand.labelled += p.labelled; cand.correct += p.shadowCorrect;
        base.labelled += p.labelled; base.correct += p.primaryCorrect;
        baseVersions.add(p.primary);
      }
      devices++;
      continue;
    }
    // A device that never scored the candidate compares nothing (its baseline labels alone would weigh one side only).
    const c = f.versions[r.version];
    if (!c) continue;
    const b = Object.entries(f.versions).filter(([v]) => isBase(v));
    paired = false;
    devices++;
    cand.labelled += c.labelled; cand.correct += c.correct;
    for (const [v, t] of b) { base.labelled += t.labelled; base.correct += t.correct; baseVersions.add(v); }
  }
  const acc = (t: { labelled: number; correct: number }): number | null => (t.labelled ? t.correct / t.labelled : null);
  const ca = acc(cand), ba = acc(base);
  return {
    candidate: { version: r.version, ...cand, accuracy: ca },
    baseline: { version: r.previousVersion ?? ([...baseVersions].sort().join(',') || 'previous'), ...base, accuracy: ba },
    gain: ca !== null && ba !== null ? ca - ba : null,
    labels: cand.labelled,
    paired: paired && devices > 0,
    devices,
    ...(r.gates.minFieldGain !== undefined ? { minFieldGain: r.gates.minFieldGain } : {}),
    minFieldLabels: r.gates.minFieldLabels ?? DEFAULT_FIELD_LABELS,
  };
}

/** One line for the CLI and the dashboard: "field accuracy: 1.1.0 0.975 vs 1.0.0 0.475, gain +0.500 (needs >= 0.1), 80 labelled requests (30 needed), paired on 2 device(s)". */
export function fieldSummary(f: FieldEvidence): string {
  const gain = f.gain === null ? 'n/a' : `${f.gain >= 0 ? '+' : ''}${f.gain.toFixed(3)}`;
  return `field accuracy: ${f.candidate.version} ${fmt(f.candidate.accuracy)} vs ${f.baseline.version} ${fmt(f.baseline.accuracy)}, ` +
    `gain ${gain}${f.minFieldGain !== undefined ? ` (needs >= ${f.minFieldGain})` : ''}, ${f.labels} labelled requests (${f.minFieldLabels} needed)` +
    `${f.paired ? ', paired' : ''} on ${f.devices} device(s)`;
}

export const fieldGateOn = (g: Gates): boolean => g.minFieldGain !== undefined || g.minFieldLabels !== undefined;
const fmt = (x: number | null): string => (x === null ? 'n/a' : x.toFixed(3));

export type Decision =
  | { kind: 'assign'; devices: string[]; stage: number }
  | { kind: 'advance'; stage: number }
  | { kind: 'complete' }
  | { kind: 'halt'; reason: string; evidence: Record<string, unknown> }
  | { kind: 'wait'; why: string };

/** A device's verdict that fails a stage (and that a halt's rollback does not overwrite). */
export const FAILED_STATES: ReadonlySet<string> = new Set(['rolled_back', 'failed']);
const PASSED = new Set(['committed']);

export function decide(r: Rollout, group: string[], assigned: Set<string>, reports: Map<string, DeviceReport>, now: number): Decision {
  if (r.state !== 'running') return { kind: 'wait', why: `rollout is ${r.state}` };
  const stagePercent = r.stages[r.stageIndex];
  const stageDevices = devicesInStage(r.id, group, stagePercent);
  const missing = stageDevices.filter((d) => !assigned.has(d));
  if (missing.length) return { kind: 'assign', devices: missing, stage: r.stageIndex };

  const mine = [...assigned].map((d) => ({ id: d, rep: reports.get(d) }));
  const forVersion = (rep?: DeviceReport): DeviceReport | undefined => (rep && (rep.version === undefined || rep.version === r.version) ? rep : undefined);
  const failed = mine.filter(({ rep }) => rep && FAILED_STATES.has(rep.state) && (rep.version === undefined || rep.version === r.version));
  const n = Math.max(1, mine.length);
  if (failed.length / n > r.gates.maxFailureRate) {
    return {
      kind: 'halt',
      reason: `${failed.length} of ${mine.length} devices failed ${r.model}@${r.version} at stage ${r.stageIndex + 1} (${stagePercent}%)`,
      evidence: Object.fromEntries(failed.map(({ id, rep }) => [id, { state: rep!.state, reason: rep!.reason }])),
    };
  }
  if (r.gates.maxDriftAlertRate !== undefined) {
    const drifting = mine.filter(({ rep }) => forVersion(rep)?.driftVerdict === 'alert');
    if (drifting.length / n > r.gates.maxDriftAlertRate) {
      return {
        kind: 'halt',
        reason: `${drifting.length} of ${mine.length} devices report alert-level drift on ${r.model}@${r.version}`,
        evidence: { devices: drifting.map((d) => d.id) },
      };
    }
  }
  if (r.gates.minShadowAgreement !== undefined) {
    const low = mine.filter(({ rep }) => {
      const s = forVersion(rep)?.shadow;
      return s && s.samples >= r.gates.minShadowSamples && s.agreement < r.gates.minShadowAgreement!;
    });
    if (low.length) {
      return {
        kind: 'halt',
        reason: `shadow agreement below ${r.gates.minShadowAgreement} on ${low.length} device(s)`,
        evidence: Object.fromEntries(low.map(({ id, rep }) => [id, rep!.shadow])),
      };
    }
  }

  const field = fieldGateOn(r.gates) ? fieldEvidence(r, mine.map((m) => m.rep)) : undefined;
  if (field && field.minFieldGain !== undefined && field.labels >= field.minFieldLabels && field.gain !== null && field.gain < field.minFieldGain) {
    return {
      kind: 'halt',
      reason: `field accuracy of ${r.model}@${r.version} is ${fmt(field.candidate.accuracy)} against ${fmt(field.baseline.accuracy)} for ${field.baseline.version}: ` +
        `gain ${fmt(field.gain)} < ${field.minFieldGain} on ${field.labels} labelled requests${field.paired ? ' (paired)' : ''}`,
      evidence: { field },
    };
  }

  const committed = mine.filter(({ rep }) => {
    const ok = forVersion(rep);
    if (!ok || !PASSED.has(ok.state)) return false;
    if (r.gates.minShadowAgreement === undefined) return true;
    return (ok.shadow?.samples ?? 0) >= r.gates.minShadowSamples;
  });
  const elapsed = (now - r.stageStartedAt) / 1000;
  if (committed.length / n < r.gates.minCommitted) {
    if (elapsed > r.gates.stageTimeoutSeconds) {
      return {
        kind: 'halt',
        reason: `stage ${r.stageIndex + 1} (${stagePercent}%) did not pass within ${r.gates.stageTimeoutSeconds} s: ${committed.length} of ${mine.length} committed`,
        evidence: Object.fromEntries(mine.map(({ id, rep }) => [id, rep?.state ?? 'no report'])),
      };
    }
    return { kind: 'wait', why: `${committed.length} of ${mine.length} devices committed` };
  }
  if (field) {
    const short = field.labels < field.minFieldLabels
      ? `${field.labels} of ${field.minFieldLabels} labelled requests`
      : field.minFieldGain !== undefined && field.gain === null ? `no labelled requests of the baseline ${field.baseline.version} to compare with` : undefined;
    if (short) {
      if (elapsed > r.gates.stageTimeoutSeconds) {
        return {
          kind: 'halt',
          reason: `stage ${r.stageIndex + 1} (${stagePercent}%) did not pass within ${r.gates.stageTimeoutSeconds} s: ${short}`,
          evidence: { field },
        };
      }
      return { kind: 'wait', why: `field gate: ${short}` };
    }
  }
  if (elapsed < r.gates.minStageSeconds) return { kind: 'wait', why: `stage soaks for ${r.gates.minStageSeconds} s` };
  if (r.stageIndex === r.stages.length - 1) return { kind: 'complete' };
  return { kind: 'advance', stage: r.stageIndex + 1 };
}

/**
 * Parses --gate flags such as "failure<=0.05", "shadow>=0.98", "samples>=500", "drift<=0.1", "soak=600",
 * "timeout=3600", "field>=-0.01" (the only gate that may be negative), "labels>=200".
 */
export function parseGates(flags: string[]): Gates {
  const g: Gates = { ...DEFAULT_GATES };
  for (const flag of flags) {
    const m = /^(failure|committed|shadow|samples|drift|soak|timeout|labels)\s*(<=|>=|=)\s*([0-9.]+)$/.exec(flag.trim())
      ?? /^(field)\s*(>=|=)\s*(-?[0-9.]+)$/.exec(flag.trim());
    if (!m) {
      throw new Error(
        `--gate "${flag}" is not understood; expected one of failure<=F, committed>=F, shadow>=F, samples>=N, drift<=F, soak=S, timeout=S, field>=D (D may be negative), labels>=N`,
      );
    }
    const v = Number(m[3]);
    if (!Number.isFinite(v)) throw new Error(`--gate "${flag}": ${m[3]} is not a number`);
    const fraction = (): number => {
      if (!(v >= 0 && v <= 1)) throw new Error(`--gate "${flag}": ${m[1]} must be a fraction between 0 and 1`);
      return v;
    };
    switch (m[1]) {
      case 'failure': g.maxFailureRate = fraction(); break;
      case 'committed': g.minCommitted = fraction(); break;
      case 'shadow': g.minShadowAgreement = fraction(); break;
      case 'samples': g.minShadowSamples = Math.floor(v); break;
      case 'drift': g.maxDriftAlertRate = fraction(); break;
      case 'soak': g.minStageSeconds = v; break;
      case 'timeout': g.stageTimeoutSeconds = v; break;
      case 'field':
        if (!(v >= -1 && v <= 1)) throw new Error(`--gate "${flag}": field is an accuracy gain between -1 and 1`);
        g.minFieldGain = v;
        break;
      case 'labels':
        if (!Number.isInteger(v) || v < 1) throw new Error(`--gate "${flag}": labels must be a whole number of labelled requests, at least 1`);
        g.minFieldLabels = v;
        break;
    }
  }
  return g;
}
