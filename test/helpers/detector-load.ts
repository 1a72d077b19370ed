// Load on a served detector for the event-loop tests and scripts/bench-event-loop.ts: clients
// posting one image after another over /v2 with Triton's binary tensors (so neither side spends
// its time on JSON numbers), a /healthz probe beside them, and the agent's event-loop lag
// histogram (edge_agent_event_loop_lag_seconds) read from GET /metrics.
import { YOLO_LIKE_INPUT } from '../../scripts/zoo/yolo-like.js';

export interface LoadResult {
  requests: number;
  failures: string[];
  seconds: number;
  /** Latencies of the /healthz probes (ms); a probe that failed or missed its deadline is Infinity. */
  health: number[];
}

/** One request body: a JSON header for `images` and its raw float32 bytes, outputs asked in binary. */
export function detectorRequest(seed = 1): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  const n = YOLO_LIKE_INPUT.shape.reduce((a: number, b: number) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (((i + seed) * 2654435761) >>> 0) % 256 / 255;
  const raw = Buffer.from(data.buffer);
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: YOLO_LIKE_INPUT.name, shape: [...YOLO_LIKE_INPUT.shape], datatype: 'FP32', parameters: { binary_data_size: raw.length } }],
    parameters: { binary_data_output: true },
  }));
  const body = new Uint8Array(header.length + raw.length);
  body.set(header);
  body.set(raw, header.length);
  return { body, headerLength: header.length };
}

/** `clients` loops of back-to-back inferences for `seconds`, with a /healthz probe every probeMs. */
export async function driveDetector(url: string, model: string, opts: { clients: number; seconds: number; probeMs?: number; healthDeadlineMs?: number }): Promise<LoadResult> {
  const { body, headerLength } = detectorRequest();
  const failures: string[] = [];
  const health: number[] = [];
  let requests = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const r = await fetch(`${url}/v2/models/${model}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
        body,
      });
      const bytes = await r.arrayBuffer();
      if (r.status !== 200) failures.push(`HTTP ${r.status}: ${Buffer.from(bytes).toString().slice(0, 300)}`);
      else requests++;
    }
  };
  const probe = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(opts.healthDeadlineMs ?? 1000) });
        await r.arrayBuffer();
        health.push(r.status === 200 ? performance.now() - t0 : Infinity);
      } catch {
        health.push(Infinity);
      }
      await new Promise((r) => setTimeout(r, opts.probeMs ?? 100));
    }
  };
  await Promise.all([...Array.from({ length: opts.clients }, client), probe()]);
  return { requests, failures, seconds: (performance.now() - start) / 1000, health };
}

/** Cumulative bucket counts of the agent's event-loop lag histogram, by upper bound (s). */
export async function lagBuckets(url: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = /^edge_agent_event_loop_lag_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/.exec(line);
    if (m) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  if (!out.size) throw new Error(`GET ${url}/metrics has no edge_agent_event_loop_lag_seconds histogram`);
  return out;
}

/** The lag samples recorded between two readings: total, and how many were at most `boundS`. */
export function lagBetween(before: Map<number, number>, after: Map<number, number>): { count: number; within(boundS: number): number; quantile(q: number): number } {
  const delta = new Map([...after].map(([le, c]) => [le, c - (before.get(le) ?? 0)]));
  const count = delta.get(Infinity) ?? 0;
  const bounds = [...delta.keys()].sort((a, b) => a - b);
  return {
    count,
    within: (boundS) => {
      if (!delta.has(boundS)) throw new Error(`no bucket with le=${boundS}`);
      return delta.get(boundS)!;
    },
    // As Prometheus' histogram_quantile: linear inside the bucket that holds the rank.
    quantile: (q) => {
      const rank = q * count;
      let prevLe = 0;
      let prevC = 0;
      for (const le of bounds) {
        const c = delta.get(le)!;
        if (c >= rank) return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevC)) / Math.max(1, c - prevC);
        prevLe = le;
        prevC = c;
      }
      return NaN;
    },
  };
}
