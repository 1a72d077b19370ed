// A bounded per-model queue: requests run one at a time in arrival order (the backend uses
// its own threads inside one run); when `limit` requests are already waiting, a new one is
// refused at once (429) instead of growing memory.
import { Errors } from '../errors.js';

export class InferenceQueue {
  readonly #limit: number;
  readonly #what: string;
  readonly #onDepth: (depth: number) => void;
  #waiting: (() => void)[] = [];
  #running = false;

  constructor(what: string, limit: number, onDepth: (depth: number) => void = () => undefined) {
    this.#what = what;
    this.#limit = limit;
    this.#onDepth = onDepth;
  }

  get depth(): number {
    return this.#waiting.length + (this.#running ? 1 : 0);
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running) {
      if (this.#waiting.length >= this.#limit) throw Errors.OVERLOADED(`model ${this.#what}`);
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        this.#onDepth(this.depth);
      });
    }
    this.#running = true;
    this.#onDepth(this.depth);
    try {
      return await job();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running = false;
      this.#onDepth(this.depth);
    }
  }
}
