// Probation: a newly activated model version serves while it is watched. It passes after N
// inferences and T seconds without breaking a rule; it fails at the first rule it breaks.
// Pure bookkeeping: the slot feeds it outcomes and acts on its verdict.
import { percentile } from './stats.js';

export interface ProbationRules {
  /** Inferences the candidate must serve before it can be committed. */
  minInferences: number;
  /** Least time in probation (ms). */
  minDurationMs: number;
  /** Fail when the error rate over the probation exceeds this (after 20 requests). */
  maxErrorRate: number;
  /** Fail when the candidate's p99 latency exceeds the previous version's p99 by this factor. */
  maxLatencyRatio: number;
  /** Fail at the first output with NaN or Infinity. */
  failOnNonFinite: boolean;
}

export const DEFAULT_PROBATION: ProbationRules = {
  minInferences: 200,
  minDurationMs: 60_000,
  maxErrorRate: 0.01,
  maxLatencyRatio: 3,
  failOnNonFinite: true,
};

export type Verdict =
  | { kind: 'pending'; why: string }
  | { kind: 'pass'; evidence: ProbationEvidence }
  | { kind: 'fail'; reason: string; evidence: ProbationEvidence };

export interface ProbationEvidence {
  inferences: number;
  errors: number;
  nonFinite: number;
  p99Ms: number;
  baselineP99Ms?: number;
  elapsedMs: number;
}

const MAX_SAMPLES = 4096;
/** Latency is judged only once the candidate (and the baseline) have this many samples. */
export const MIN_LATENCY_SAMPLES = 50;

export class Probation {
  readonly startedAt: number;
  #inferences = 0;
  #errors = 0;
  #nonFinite = 0;
  readonly #latencies: number[] = [];

  constructor(readonly rules: ProbationRules, readonly baselineP99Ms: number | undefined, now = Date.now()) {
    this.startedAt = now;
  }

  /** One served request: its latency, whether it failed, whether its outputs were all finite. */
  observe(latencyMs: number, ok: boolean, finite: boolean): void {
    this.#inferences++;
    if (!ok) this.#errors++;
    if (ok && !finite) this.#nonFinite++;
    if (ok) {
      if (this.#latencies.length < MAX_SAMPLES) this.#latencies.push(latencyMs);
      else this.#latencies[this.#inferences % MAX_SAMPLES] = latencyMs;
    }
  }

  evidence(now = Date.now()): ProbationEvidence {
    return {
      inferences: this.#inferences,
      errors: this.#errors,
      nonFinite: this.#nonFinite,
      p99Ms: Math.round(percentile(this.#latencies, 99) * 1000) / 1000,
      baselineP99Ms: this.baselineP99Ms,
      elapsedMs: now - this.startedAt,
    };
  }

  verdict(now = Date.now()): Verdict {
    const e = this.evidence(now);
    const r = this.rules;
    if (r.failOnNonFinite && e.nonFinite > 0) {
      return { kind: 'fail', reason: `${e.nonFinite} of ${e.inferences} outputs had NaN or Infinity`, evidence: e };
    }
    if (e.inferences >= 20 && e.errors / e.inferences > r.maxErrorRate) {
      return { kind: 'fail', reason: `error rate ${(e.errors / e.inferences).toFixed(3)} > ${r.maxErrorRate}`, evidence: e };
    }
    // p99 needs enough samples on both sides, or one scheduling hiccup decides.
    const latencySamples = this.#latencies.length;
    if (this.baselineP99Ms !== undefined && latencySamples >= MIN_LATENCY_SAMPLES && e.p99Ms > this.baselineP99Ms * r.maxLatencyRatio) {
      return {
        kind: 'fail',
        reason: `p99 latency ${e.p99Ms.toFixed(2)} ms is more than ${r.maxLatencyRatio}x the previous version's ${this.baselineP99Ms.toFixed(2)} ms`,
        evidence: e,
      };
    }
    if (e.inferences < r.minInferences) return { kind: 'pending', why: `${e.inferences} of ${r.minInferences} inferences` };
    // A version is not committed before its latency could be judged at all.
    if (this.baselineP99Ms !== undefined && latencySamples < MIN_LATENCY_SAMPLES) {
      return { kind: 'pending', why: `${latencySamples} of ${MIN_LATENCY_SAMPLES} latency samples` };
    }
    if (e.elapsedMs < r.minDurationMs) return { kind: 'pending', why: `${Math.round(e.elapsedMs / 1000)} of ${r.minDurationMs / 1000} s` };
    return { kind: 'pass', evidence: e };
  }
}

/** True when every float in the outputs is finite. */
export function allFinite(outputs: Record<string, { data: ArrayLike<number | bigint> }>): boolean {
  for (const t of Object.values(outputs)) {
    const d = t.data;
    if (!(d instanceof Float32Array || d instanceof Float64Array)) continue;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  }
  return true;
}
