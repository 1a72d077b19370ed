// Reconnect delays: capped exponential backoff with full jitter, so a fleet that lost its
// broker does not reconnect in lockstep when it comes back.
export class Backoff {
  #attempt = 0;
  constructor(private readonly minMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {}

  /** The next delay: uniform in [cap/2, cap], cap = min(max, min * 2^attempt). */
  next(): number {
    const cap = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.max(1, Math.round(cap / 2 + this.random() * (cap / 2)));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempt(): number {
    return this.#attempt;
  }
}
