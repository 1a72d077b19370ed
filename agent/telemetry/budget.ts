// The send budget of one stream on a metered link: a token bucket for bytes per second (that
// can save up burstSeconds of budget) and a per-UTC-day allowance. Bytes are encoded wire bytes.
import type { StreamPolicy } from './policy.js';

export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

export class SendBudget {
  #tokens: number;
  #refilledAt: number;
  #day: string;
  sentToday: number;

  constructor(
    private readonly policy: StreamPolicy,
    private readonly burstSeconds: number,
    now: number,
    day: string,
    sentToday: number,
  ) {
    this.#tokens = policy.bytesPerSecond * burstSeconds;
    this.#refilledAt = now;
    this.#day = day;
    this.sentToday = day === utcDay(now) ? sentToday : 0;
  }

  get limited(): boolean {
    return !this.policy.exempt && (this.policy.bytesPerSecond > 0 || this.policy.bytesPerDay > 0);
  }

  #refill(now: number): void {
    const day = utcDay(now);
    if (day !== this.#day) {
      this.#day = day;
      this.sentToday = 0;
    }
    if (this.policy.bytesPerSecond > 0) {
      const cap = this.policy.bytesPerSecond * this.burstSeconds;
      this.#tokens = Math.min(cap, this.#tokens + ((now - this.#refilledAt) / 1000) * this.policy.bytesPerSecond);
    }
    this.#refilledAt = now;
  }

  /** Bytes that may be sent now (Infinity when unlimited or exempt). */
  available(now: number): number {
    if (!this.limited) return Infinity;
    this.#refill(now);
    let left = Infinity;
    if (this.policy.bytesPerSecond > 0) left = Math.max(0, Math.floor(this.#tokens));
    if (this.policy.bytesPerDay > 0) left = Math.min(left, Math.max(0, this.policy.bytesPerDay - this.sentToday));
    return left;
  }

  /** Whether the bucket is as full as it gets (a record larger than the bucket may then go alone). */
  full(now: number): boolean {
    this.#refill(now);
    const dayOk = this.policy.bytesPerDay === 0 || this.sentToday < this.policy.bytesPerDay;
    const secOk = this.policy.bytesPerSecond === 0 || this.#tokens >= this.policy.bytesPerSecond * this.burstSeconds;
    return dayOk && secOk;
  }

  dayLeft(now: number): number | null {
    if (this.policy.exempt || this.policy.bytesPerDay === 0) return null;
    this.#refill(now);
    return Math.max(0, this.policy.bytesPerDay - this.sentToday);
  }

  get day(): string {
    return this.#day;
  }

  charge(bytes: number, now: number): void {
    this.#refill(now);
    this.sentToday += bytes;
    if (this.policy.bytesPerSecond > 0) this.#tokens -= bytes;
  }

  /**
   * How long until `need` bytes may be sent (ms); 0 when now. A need above what the bucket
   * can hold is capped at a full bucket (a record may then go alone).
   */
  waitMs(now: number, need = 1): number {
    if (!this.limited) return 0;
    this.#refill(now);
    if (this.policy.bytesPerDay > 0 && this.sentToday >= this.policy.bytesPerDay) {
      return Date.parse(`${this.#day}T00:00:00Z`) + 86_400_000 - now;
    }
    const want = Math.min(Math.max(1, need), this.policy.bytesPerSecond * this.burstSeconds);
    if (this.policy.bytesPerSecond > 0 && this.#tokens < want) {
      return Math.ceil(((want - this.#tokens) / this.policy.bytesPerSecond) * 1000);
    }
    return 0;
  }
}
