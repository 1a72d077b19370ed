// Reconnect delays: capped exponential backoff with full jitter, so a fleet that lost its
// broker does not come back in lockstep. With full jitter (delay uniform in [0, cap]) N
// devices whose cap is W reconnect at about N/W per second once their caps have grown, the
// rate a broker restart must survive (issue 20: a reconnect storm).
export class Backoff {
  #attempt = 0;
  #atCap = false;
  constructor(private readonly minMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {}

  /** The current cap: min(max, min * 2^attempt), or max after toCap(). */
  get capMs(): number {
    return this.#atCap ? this.maxMs : Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.#attempt, 30));
  }

  /** The next delay: uniform in [0, cap] (at least 1 ms); the cap then doubles. */
  next(): number {
    const cap = this.capMs;
    this.#attempt++;
    return Math.max(1, Math.round(this.random() * cap));
  }

  /**
   * The broker said it is overloaded (MQTT 5 "server busy", "quota exceeded", "connection
   * rate exceeded"): wait as long as the longest delay from now on, until reset().
   */
  toCap(): void {
    this.#atCap = true;
  }

  /** After a connection that lasted (see mqtt.stableAfterMs), start again from the minimum. */
  reset(): void {
    this.#attempt = 0;
    this.#atCap = false;
  }

  get attempt(): number {
    return this.#attempt;
  }
}

/** MQTT 5 CONNACK reason codes that mean "the broker is overloaded: come back later". */
export const BROKER_BUSY = new Map<number, string>([
  [0x89, 'server busy'],
  [0x97, 'quota exceeded'],
  [0x9f, 'connection rate exceeded'],
]);

/**
 * How long to hold the telemetry backlog after a (re)connection: a random share of the
 * window, so devices that reconnect together do not all send their backlogs at once. The
 * window is mqtt.backlogSpreadMs, never longer than the reconnect cap (a device told to
 * reconnect within 500 ms is not made to hold its data for seconds).
 */
export function backlogDelay(spreadMs: number, reconnectMaxMs: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(spreadMs, reconnectMaxMs));
}
