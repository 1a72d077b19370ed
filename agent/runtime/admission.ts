// Admission of inference requests, decided from the request line and headers alone (before
// the body is read or parsed): a request counts as in flight from its headers to its answer.
// A new one is refused when queueLimit requests already wait beside the running one, or when
// its expected wait (requests in flight x the model's recent mean service time) exceeds the
// wait budget: queueWaitFactor x the p99 service time of recent requests that found the model
// idle, or maxQueueWaitMs when set. (Under load the measured service time grows: ONNX Runtime
// runs on the event loop, so other requests' intake lands inside it; a budget taken from
// loaded samples would grow with the load it is meant to bound.)
// Admitted latency is then about intake + wait + service <= (1 + factor) x the unloaded
// latency; the requests that would have waited longer get 429 cheaply instead.
// That wait is only the part the agent can see. When the event loop itself is saturated,
// requests also wait unread in socket buffers; a client that stamps its send time
// (x-request-start) lets the agent refuse those that already waited more than
// maxRequestAgeMs, like CoDel's sojourn time or a gRPC deadline.

export type Refusal = 'queue_full' | 'wait_budget' | 'too_old';

export interface AdmissionLimits {
  /** Requests waiting besides the one running. */
  queueLimit: number;
  /** Allowed expected wait, in multiples of the recent p99 service time; 0 = off. */
  queueWaitFactor: number;
  /** Allowed expected wait (ms), instead of queueWaitFactor; 0 = use the factor. */
  maxQueueWaitMs: number;
  /** Refuse a request that waited longer than this (ms) before the agent read its headers; 0 = off. */
  maxRequestAgeMs?: number;
}

export type Admission =
  | { admitted: true; release: () => void }
  | { admitted: false; reason: Refusal; inFlight: number; expectedWaitMs: number; retryAfterSeconds: number };

// Service times are kept for the last WINDOW requests; mean and p99 are recomputed every
// REFRESH of them (sorting 64 numbers, not one per request).
const WINDOW = 64;
const REFRESH = 8;
// Before this many samples the wait budget does not apply (only queueLimit).
const MIN_SAMPLES = 8;

export class AdmissionGate {
  readonly #limits: AdmissionLimits;
  readonly #recent = new Float64Array(WINDOW);
  #samples = 0;
  #meanMs = 0;
  /** Service times of requests that ran with nothing queued: the reference of the budget. */
  readonly #alone = new Float64Array(WINDOW);
  #aloneSamples = 0;
  #p99Ms = 0;
  #inFlight = 0;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The expected wait a request arriving now would have (ms). */
  get expectedWaitMs(): number {
    return this.#inFlight * this.#meanMs;
  }

  /** The current wait budget (ms); Infinity when only queueLimit applies. */
  get waitBudgetMs(): number {
    const { maxQueueWaitMs, queueWaitFactor } = this.#limits;
    if (maxQueueWaitMs > 0) return maxQueueWaitMs;
    if (queueWaitFactor <= 0 || this.#samples < MIN_SAMPLES) return Infinity;
    return queueWaitFactor * this.#p99Ms;
  }

  /**
   * Admits (the caller must release() once answered) or says why not. `ageMs`: how long ago
   * the client sent the request (its x-request-start), when it said.
   */
  admit(ageMs?: number): Admission {
    const ahead = this.#inFlight;
    const expectedWaitMs = ahead * this.#meanMs;
    const maxAge = this.#limits.maxRequestAgeMs ?? 0;
    let reason: Refusal | undefined;
    if (ahead > this.#limits.queueLimit) reason = 'queue_full';
    else if (maxAge > 0 && ageMs !== undefined && ageMs > maxAge) reason = 'too_old';
    // The first request is always admitted: refusing into an idle model helps nobody.
    else if (ahead > 0 && expectedWaitMs > this.waitBudgetMs) reason = 'wait_budget';
    if (reason) {
      return { admitted: false, reason, inFlight: ahead, expectedWaitMs, retryAfterSeconds: Math.max(1, Math.ceil(expectedWaitMs / 1000)) };
    }
    this.#inFlight++;
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
      },
    };
  }

  /** One request's time in the backend (ms, queue wait excluded); `alone`: nothing else was queued. */
  noteService(ms: number, alone = false): void {
    this.#recent[this.#samples % WINDOW] = ms;
    this.#samples++;
    if (alone) {
      this.#alone[this.#aloneSamples % WINDOW] = ms;
      this.#aloneSamples++;
    }
    if (this.#samples <= MIN_SAMPLES || this.#samples % REFRESH === 0) this.#refresh();
  }

  #refresh(): void {
    const n = Math.min(this.#samples, WINDOW);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.#recent[i]!;
    this.#meanMs = sum / n;
    // Until enough requests ran alone, the recent ones stand in.
    const [ref, m] = this.#aloneSamples >= MIN_SAMPLES ? [this.#alone, Math.min(this.#aloneSamples, WINDOW)] : [this.#recent, n];
    const sorted = ref.slice(0, m).sort();
    this.#p99Ms = sorted[Math.min(m - 1, Math.ceil(0.99 * m) - 1)]!;
  }

  describe(): Record<string, unknown> {
    const budget = this.waitBudgetMs;
    return {
      inFlight: this.#inFlight,
      serviceMeanMs: round(this.#meanMs),
      serviceP99Ms: round(this.#p99Ms),
      waitBudgetMs: Number.isFinite(budget) ? round(budget) : null,
    };
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

