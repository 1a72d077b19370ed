// Shadow runs: a candidate version answers a share of the active version's requests after
// the request has been answered (never on its path), and how the two agree goes to
// telemetry (stream "shadow") and to /v1/status. The rollout uses the aggregate as a gate.
import type { TensorMap } from './backend.js';
import type { ModelVersion } from './model-version.js';
import { argmax, scoreRows } from './scores.js';
import { fusedOutputName } from './ensemble.js';

export type RecordFn = (stream: string, payload: unknown) => void;

export interface ShadowComparison {
  model: string;
  active: string;
  candidate: string;
  rows: number;
  /** Share of batch rows whose top-1 class is the same. */
  top1Agreement: number;
  /** Mean absolute difference of the compared output's scores, over every element. */
  meanAbsDiff: number;
  activeLatencyMs: number;
  candidateLatencyMs: number;
  /** The candidate's top-1 class per row (scored against field labels; not recorded to telemetry). */
  candidateTop1?: number[];
}

export function compare(model: string, active: ModelVersion, activeOut: TensorMap, candidate: ModelVersion, candOut: TensorMap): Omit<ShadowComparison, 'activeLatencyMs' | 'candidateLatencyMs'> {
  const am = active.pkg.manifest, cm = candidate.pkg.manifest;
  const a = scoreRows(am.postprocessing, activeOut[fusedOutputName(am)]!);
  const c = scoreRows(cm.postprocessing, candOut[fusedOutputName(cm)]!);
  if (a.length !== c.length || a[0]?.length !== c[0]?.length) {
    throw new Error(`candidate answered ${c.length}x${c[0]?.length ?? 0}, the active version ${a.length}x${a[0]?.length ?? 0}`);
  }
  let agree = 0, diff = 0, count = 0;
  const candidateTop1: number[] = [];
  for (let r = 0; r < a.length; r++) {
    candidateTop1.push(argmax(c[r]!));
    if (argmax(a[r]!) === candidateTop1[r]) agree++;
    for (let k = 0; k < a[r]!.length; k++) { diff += Math.abs(a[r]![k]! - c[r]![k]!); count++; }
  }
  return { model, active: active.version, candidate: candidate.version, rows: a.length, top1Agreement: a.length ? agree / a.length : 1, meanAbsDiff: count ? diff / count : 0, candidateTop1 };
}

export class ShadowRun {
  readonly candidate: ModelVersion;
  readonly fraction: number;
  readonly startedAt = Date.now();
  runs = 0;
  skipped = 0;
  failures = 0;
  recordFailures = 0;
  rowsCompared = 0;
  rowsAgreeing = 0;
  sumAbsDiff = 0;
  sumCandidateMs = 0;
  sumActiveMs = 0;
  lastError: string | undefined;
  #credit = 0;
  #busy = false;
  #stopped = false;

  constructor(candidate: ModelVersion, fraction: number) {
    this.candidate = candidate;
    this.fraction = fraction;
  }

  /** Whether this request is mirrored: exactly `fraction` of requests, spread evenly. */
  take(): boolean {
    if (this.#stopped) return false;
    this.#credit += this.fraction;
    if (this.#credit < 1) return false;
    this.#credit -= 1;
    // One shadow run at a time: under load, a mirrored request is skipped rather than queued.
    if (this.#busy) {
      this.skipped++;
      return false;
    }
    return true;
  }

  async mirror(model: string, active: ModelVersion, inputs: TensorMap, activeOut: TensorMap, activeMs: number, record: RecordFn | undefined, onResult: (c: ShadowComparison) => void): Promise<void> {
    this.#busy = true;
    try {
      const t0 = performance.now();
      const out = await this.candidate.run(inputs);
      const candidateMs = performance.now() - t0;
      const c: ShadowComparison = { ...compare(model, active, activeOut, this.candidate, out), activeLatencyMs: round(activeMs), candidateLatencyMs: round(candidateMs) };
      this.runs++;
      this.rowsCompared += c.rows;
      this.rowsAgreeing += Math.round(c.top1Agreement * c.rows);
      this.sumAbsDiff += c.meanAbsDiff;
      this.sumCandidateMs += candidateMs;
      this.sumActiveMs += activeMs;
      onResult(c);
      try {
        const { candidateTop1: _top1, ...recorded } = c;
        record?.('shadow', recorded);
      } catch (err) {
        // The comparison is kept in the summary; a full or closed telemetry buffer only loses the record.
        this.recordFailures++;
        this.lastError = `telemetry: ${(err as Error).message}`;
      }
    } catch (err) {
      this.failures++;
      this.lastError = (err as Error).message;
    } finally {
      this.#busy = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.candidate.dispose();
  }

  summary(): Record<string, unknown> {
    return {
      candidate: this.candidate.version,
      package: this.candidate.pkg.dir,
      backend: this.candidate.choice.chosen,
      fraction: this.fraction,
      runs: this.runs,
      skipped: this.skipped,
      failures: this.failures,
      recordFailures: this.recordFailures,
      top1Agreement: this.rowsCompared ? this.rowsAgreeing / this.rowsCompared : undefined,
      meanAbsDiff: this.runs ? this.sumAbsDiff / this.runs : undefined,
      meanActiveLatencyMs: this.runs ? round(this.sumActiveMs / this.runs) : undefined,
      meanCandidateLatencyMs: this.runs ? round(this.sumCandidateMs / this.runs) : undefined,
      lastError: this.lastError,
    };
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
