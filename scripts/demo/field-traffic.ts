// The field side of the learning demo: an application on each device sends digits to the
// agent's local inference API and, for some answers, learns the true digit later and sends it
// as feedback. The device's own answer to the feedback (`correct`) is what is tallied here, per
// model version that answered: the device's field accuracy.
import { DIGIT_PIXELS, type DigitSet } from '../../tools/edge-model/digits.js';

/** Inverted digits (white background, dark strokes): the shifted domain of test/learn-digits.test.ts. */
export const invert = (v: number): number => 1 - v;
export const same = (v: number): number => v;

export interface Tally {
  sent: number;
  labelled: number;
  correct: number;
  /** Per version that answered: labelled answers and how many were right. */
  byVersion: Record<string, { labelled: number; correct: number }>;
}

export const emptyTally = (): Tally => ({ sent: 0, labelled: 0, correct: 0, byVersion: {} });

export const accuracy = (t: { labelled: number; correct: number } | undefined): number => (t && t.labelled ? t.correct / t.labelled : NaN);

export interface Traffic {
  /** Agent base URL (http://127.0.0.1:PORT). */
  url: string;
  set: DigitSet;
  /** Image indices into `set`, sent in this order. */
  indices: number[];
  map: (v: number) => number;
  /** Whether the application learns the true digit of the i-th request (default: always). */
  labelled?: (i: number) => boolean;
  /** Stops early when it returns true (checked before each request). */
  until?: () => boolean;
  /** Requests in flight at once (default 2: the application has more than one camera). */
  parallel?: number;
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json() as Record<string, unknown>;
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

/** Sends the images, one image a request, and labels the answers the application learns about. */
export async function sendDigits(t: Traffic, tally: Tally = emptyTally()): Promise<Tally> {
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const k = t.indices[i]!;
    const data = Array.from(t.set.images.subarray(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS), t.map);
    const answer = await post(`${t.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data } } });
    tally.sent++;
    if (t.labelled && !t.labelled(i)) return;
    const fb = await post(`${t.url}/v1/models/digits/feedback`, { id: answer.id, label: t.set.labels[k] });
    const version = String(answer.version);
    const v = (tally.byVersion[version] ??= { labelled: 0, correct: 0 });
    v.labelled++;
    tally.labelled++;
    if (fb.correct === true) {
      v.correct++;
      tally.correct++;
    }
  };
  const worker = async (): Promise<void> => {
    while (next < t.indices.length && !t.until?.()) await one(next++);
  };
  await Promise.all(Array.from({ length: t.parallel ?? 2 }, worker));
  return tally;
}

/** `n` indices from `from`, stepping by `step` (devices take interleaved, disjoint slices). */
export const slice = (from: number, n: number, step = 1): number[] => Array.from({ length: n }, (_, i) => from + i * step);
