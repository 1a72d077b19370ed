// The one drift verdict every screen shows: the device page (GET /v1/drift), the fleet
// dashboard (controller/dashboard/views.ts) and `edge-fleet drift` (controller/drift/aggregate.ts)
// all call these functions and print what they return, so the three cannot disagree.
// No Node imports: the controller imports this module too.

export type DriftVerdict = 'ok' | 'warn' | 'alert' | 'insufficient' | 'none';

export interface ShownVerdict {
  verdict: DriftVerdict;
  /** How the state-label class of both pages colours it. */
  level: 'ok' | 'warn' | 'bad' | 'muted';
  /** Why there is no verdict ('insufficient', 'none'). */
  reason?: string;
  /** False when scores would read as alarms: a window too small to judge has none worth showing. */
  scores: boolean;
}

const LEVEL: Record<DriftVerdict, ShownVerdict['level']> = { ok: 'ok', warn: 'warn', alert: 'bad', insufficient: 'muted', none: 'muted' };
const RANK: Record<DriftVerdict, number> = { none: 0, insufficient: 1, ok: 2, warn: 3, alert: 4 };

/** The rule for a window, on the device and for the fleet's merged window: fewer than minSize observations give no verdict. */
export function judgeWindow(computed: 'ok' | 'warn' | 'alert', size: number, minSize: number, what = 'window'): { verdict: 'ok' | 'warn' | 'alert' | 'insufficient'; reason?: string } {
  if (size < minSize) return { verdict: 'insufficient', reason: `${what} of ${size} < minWindowSize ${minSize}: no verdict` };
  return { verdict: computed };
}

interface ReportLike {
  verdict?: unknown;
  reason?: unknown;
  window?: { size?: unknown; minSize?: unknown };
  features?: { reasons?: unknown }[];
}

/** What a stored or served drift report says, for a screen. Anything that is not a known verdict reads as 'none'. */
export function shownVerdict(report: unknown): ShownVerdict {
  const r = (report && typeof report === 'object' ? report : {}) as ReportLike;
  const v = typeof r.verdict === 'string' && r.verdict in RANK ? (r.verdict as DriftVerdict) : 'none';
  if (v === 'none') return { verdict: 'none', level: LEVEL.none, reason: 'no drift report', scores: false };
  if (v !== 'insufficient') return { verdict: v, level: LEVEL[v], scores: true };
  // Reports since this module carry `reason`; older ones only in each feature's reasons.
  const fromFeature = Array.isArray(r.features) ? r.features.map((f) => (Array.isArray(f?.reasons) ? f.reasons[0] : undefined)).find((x) => typeof x === 'string') : undefined;
  const size = typeof r.window?.size === 'number' ? r.window.size : undefined;
  const reason = typeof r.reason === 'string' ? r.reason : typeof fromFeature === 'string' ? fromFeature : `window of ${size ?? '?'} too small: no verdict`;
  return { verdict: 'insufficient', level: LEVEL.insufficient, reason, scores: false };
}

/** Several windows (devices of a fleet, model versions of a device): the worst judged one; 'insufficient' only when none was judged. */
export function combinedVerdict(shown: ShownVerdict[]): ShownVerdict {
  let worst: ShownVerdict = { verdict: 'none', level: LEVEL.none, reason: 'no drift report', scores: false };
  for (const s of shown) if (RANK[s.verdict] > RANK[worst.verdict]) worst = s;
  if (worst.verdict === 'insufficient') {
    const n = shown.filter((s) => s.verdict === 'insufficient').length;
    return n > 1 ? { ...worst, reason: `${n} windows too small to judge (${worst.reason})` } : worst;
  }
  return worst;
}

/** One line for a terminal: `alert`, `insufficient: window of 22 < minWindowSize 100: no verdict`. */
export function verdictText(s: ShownVerdict): string {
  return s.reason && !s.scores ? `${s.verdict}: ${s.reason}` : s.verdict;
}
