// What the log says about readiness, kept true to /readyz: "edge-agent listening" when the HTTP
// server is up (with what readiness still waits for), "edge-agent ready" only once /readyz
// would answer 200, "edge-agent not ready" (with the reasons) when it stops being so or the
// reasons change. systemd's STATUS= line follows the same transitions.
import type { Logger } from '../log.js';

export interface ReadinessSource {
  /** The reasons /readyz gives; empty when ready. */
  notReady(): string[];
}

export class ReadinessLog {
  readonly #source: ReadinessSource;
  readonly #log: Logger;
  readonly #status: (text: string) => void;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** The reasons last logged ('' = ready); undefined before the first check. */
  #last: string | undefined;
  #url = '';

  constructor(source: ReadinessSource, log: Logger, status: (text: string) => void, intervalMs = 250) {
    this.#source = source;
    this.#log = log;
    this.#status = status;
    this.#intervalMs = intervalMs;
  }

  /** Logs the current state at once, then each change (models warm up, storage fails, ...). */
  start(url: string): void {
    this.#url = url;
    this.check();
    this.#timer ??= setInterval(() => this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Compares readiness with what was last logged; logs and updates systemd's status on a change. */
  check(): void {
    const reasons = this.#source.notReady();
    const now = reasons.join('; ');
    if (now === this.#last) return;
    const first = this.#last === undefined;
    this.#last = now;
    if (!now) {
      this.#log.info({ url: this.#url }, 'edge-agent ready');
      this.#status(`ready, serving ${this.#url}`);
    } else {
      // At start: what the agent waits for (models warming up, say); later: why it stopped being ready.
      this.#log[first ? 'info' : 'warn']({ url: this.#url, waitingFor: reasons }, first ? 'edge-agent not ready yet' : 'edge-agent not ready');
      this.#status(`not ready, serving ${this.#url}: ${now}`);
    }
  }
}
