// One ONNX Runtime session on its own worker thread (ort-thread-worker.ts), for models whose
// runs cost more than the event loop can give (a 30 ms detector at full rate would otherwise
// stall health checks, MQTT keepalives and telemetry intake). An inference is one message
// each way: the inputs are copied once into the message (the caller keeps its tensors, which
// shadow runs, drift capture and telemetry read after the run), the outputs are transferred
// back without a copy. A thread that dies fails the runs it had with a clear error and is
// started again from the model bytes; dispose() releases the session and ends the thread.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DType, Tensor, TensorMap } from './backend.js';
import type { GraphOptimizationLevel } from './ort-backend.js';

// The wire format between the agent and the thread (ort-thread-worker.ts imports these types).
export interface WireTensor {
  name: string;
  dtype: DType;
  dims: number[];
  data: Tensor['data'];
}
export interface ThreadInit {
  model: Uint8Array;
  threads: number;
  graphOptimizationLevel: GraphOptimizationLevel;
  /** Niceness of the thread and of ONNX Runtime's pool threads (0 = the process's). */
  nice: number;
}
export type ToThread = { type: 'run'; id: number; inputs: WireTensor[] } | { type: 'close' };
export type FromThread =
  | { type: 'ready'; inputs: string[]; outputs: string[] }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; ms: number; outputs: WireTensor[] }
  | { type: 'error'; id: number; message: string };

/** The thread's script beside this module (.js in dist/, .ts when the sources run directly). */
const here = fileURLToPath(import.meta.url);
const WORKER_FILE = path.join(path.dirname(here), `ort-thread-worker${path.extname(here)}`);

export interface ThreadRun {
  outputs: TensorMap;
  /** Time the session's run took on the thread (ms), without the hand-offs. */
  runMs: number;
}

interface Pending {
  resolve(r: ThreadRun): void;
  reject(err: Error): void;
}

export interface OrtThreadOptions {
  /** Shown in errors ("ONNX Runtime thread of detector@1.0.0"). */
  name: string;
  threads: number;
  graphOptimizationLevel: GraphOptimizationLevel;
  /** Raises the thread's niceness (Linux: per thread), so the event loop wins the CPU under load; 0 = unchanged. */
  nice?: number;
}

export class OrtThreadSession {
  readonly #model: Uint8Array;
  readonly #opts: OrtThreadOptions;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #worker: Worker | undefined;
  /** Settles when the current thread's session is ready (rejects if it could not load). */
  #ready: Promise<Worker> | undefined;
  #closing: Promise<void> | undefined;
  /** Threads started again after dying, and why the last one died. */
  restarts = 0;
  lastCrash: string | undefined;

  private constructor(model: Uint8Array, opts: OrtThreadOptions) {
    this.#model = model;
    this.#opts = opts;
  }

  /** Starts the thread and waits until it has loaded the model (rejects with ONNX Runtime's reason). */
  static async start(model: Uint8Array, opts: OrtThreadOptions): Promise<OrtThreadSession> {
    const s = new OrtThreadSession(model, opts);
    await s.#spawn();
    return s;
  }

  /** The thread serving now (tests end it to stand for a crash). */
  get worker(): Worker | undefined {
    return this.#worker;
  }

  #spawn(): Promise<Worker> {
    const init: ThreadInit = { model: this.#model, threads: this.#opts.threads, graphOptimizationLevel: this.#opts.graphOptimizationLevel, nice: this.#opts.nice ?? 0 };
    // Run from the sources (tsx, tests), the thread needs a TypeScript loader: tsx's hooks do not
    // reach worker threads on Node 20, so the thread registers them before loading its script.
    const worker = WORKER_FILE.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(WORKER_FILE).href)}); })`, { eval: true, workerData: init, name: `ort:${this.#opts.name}` })
      : new Worker(WORKER_FILE, { workerData: init, name: `ort:${this.#opts.name}` });
    this.#worker = worker;
    let uncaught: Error | undefined;
    let served = false;
    this.#ready = new Promise<Worker>((resolve, reject) => {
      worker.on('message', (m: FromThread) => {
        switch (m.type) {
          case 'ready': served = true; resolve(worker); break;
          case 'failed': reject(new Error(`ONNX Runtime could not load ${this.#opts.name} on its thread: ${m.message}`)); break;
          case 'result': this.#settle(m.id)?.resolve({ outputs: toTensorMap(m.outputs), runMs: m.ms }); break;
          case 'error': this.#settle(m.id)?.reject(new Error(`ONNX Runtime (on its thread) failed to run ${this.#opts.name}: ${m.message}`)); break;
        }
      });
      worker.on('error', (err) => (uncaught = err));
      worker.on('exit', (code) => {
        if (this.#worker !== worker) return;
        this.#worker = undefined;
        const why = `the ONNX Runtime thread of ${this.#opts.name} stopped (exit code ${code}${uncaught ? `: ${uncaught.message}` : ''})`;
        reject(new Error(why));
        if (this.#closing || !served) return;
        // A crash: the runs it had fail, and a new thread takes over for the next ones. (A
        // thread that never loaded the model is not restarted here: the next run tries again.)
        this.lastCrash = `${new Date().toISOString()} ${why}`;
        for (const [id, p] of this.#pending) {
          this.#pending.delete(id);
          p.reject(new Error(`${why} during the inference; a new thread is starting`));
        }
        this.restarts++;
        this.#spawn().catch(() => undefined);
      });
    });
    // Nobody may be waiting on a restart; its failure shows up at the next run.
    this.#ready.catch(() => undefined);
    return this.#ready;
  }

  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    this.#pending.delete(id);
    return p;
  }

  /** One inference: inputs copied to the thread, outputs transferred back. */
  async run(inputs: TensorMap): Promise<ThreadRun> {
    if (this.#closing) throw new Error(`${this.#opts.name}: the ONNX Runtime thread has been shut down`);
    // A thread that failed to come back is started again for this run.
    const worker = await (this.#worker ? this.#ready! : this.#spawn());
    const id = this.#nextId++;
    const wire: WireTensor[] = Object.entries(inputs).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.shape, data: t.data }));
    return new Promise<ThreadRun>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ type: 'run', id, inputs: wire } satisfies ToThread);
    });
  }

  /** Releases the session and ends the thread; runs still pending fail. Idempotent. */
  dispose(): Promise<void> {
    this.#closing ??= (async () => {
      const worker = this.#worker;
      if (!worker) return;
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage({ type: 'close' } satisfies ToThread);
      // A thread stuck in a run is ended rather than waited for.
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id);
        p.reject(new Error(`${this.#opts.name}: the ONNX Runtime thread was shut down before the inference finished`));
      }
    })();
    return this.#closing;
  }
}

function toTensorMap(list: WireTensor[]): TensorMap {
  const out: TensorMap = {};
  for (const t of list) out[t.name] = { dtype: t.dtype, shape: t.dims, data: t.data };
  return out;
}
