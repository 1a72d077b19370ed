// A bounded per-model queue: requests run one at a time in arrival order (the backend uses
// its own threads inside one run); when `limit` requests are already waiting, a new one is
// refused at once (429) instead of growing memory.
//
// A request whose client has gone (its `signal` aborted) takes no place: refused on entry,
// and taken out of the line if it goes while waiting. Admission (admission.ts) frees a
// request's place when its client goes, so a departed request left in the line would hold a
// place the gate has already given to another, and that one would get 429 here.
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

  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw Errors.DEADLINE_EXCEEDED(`model ${this.#what}`);
    if (this.#running) {
      if (this.#waiting.length >= this.#limit) throw Errors.OVERLOADED(`model ${this.#what}`);
      await new Promise<void>((resolve, reject) => {
        const turn = (): void => {
          signal?.removeEventListener('abort', gone);
          resolve();
        };
        const gone = (): void => {
          const i = this.#waiting.indexOf(turn);
          if (i >= 0) this.#waiting.splice(i, 1);
          this.#onDepth(this.depth);
          reject(Errors.DEADLINE_EXCEEDED(`model ${this.#what}`));
        };
        signal?.addEventListener('abort', gone, { once: true });
        this.#waiting.push(turn);
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
