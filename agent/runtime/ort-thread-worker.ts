// The worker thread that owns one ONNX Runtime session (started by ort-thread.ts). onnxruntime-node
// runs an inference synchronously on the thread that calls it, so a costly model runs here and
// the agent's event loop only posts the inputs and receives the outputs: one message each way.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { FromThread, ThreadInit, ToThread, WireTensor } from './ort-thread.js';

const port = parentPort!;
const init = workerData as ThreadInit;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Output buffers that the tensor owns whole are handed over (transferred), not copied. */
function transferable(outputs: WireTensor[]): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const o of outputs) {
    const b = o.data.buffer;
    if (b instanceof ArrayBuffer && o.data.byteOffset === 0 && o.data.byteLength === b.byteLength && !list.includes(b)) list.push(b);
  }
  return list;
}

function post(msg: FromThread, transfer: ArrayBuffer[] = []): void {
  try {
    port.postMessage(msg, transfer);
  } catch {
    // A buffer the runtime does not let go of (an external one) is copied instead.
    port.postMessage(msg);
  }
}

// Niceness is per thread on Linux, and ONNX Runtime's pool threads (created with the session)
// inherit it: under load the event loop's thread is scheduled ahead of the inference.
if (init.nice > 0) {
  try {
    setPriority(init.nice);
  } catch {
    // Not permitted (or not Linux): the thread keeps the process's priority.
  }
}

let session: ort.InferenceSession;
try {
  session = await ort.InferenceSession.create(init.model, {
    intraOpNumThreads: init.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: init.graphOptimizationLevel,
    // No spinning: ONNX Runtime's pool threads would otherwise busy-wait between parallel
    // sections and after each run, taking the core the event loop needs (bench:event-loop:
    // lag p99 27.9 -> 19.4 ms at nice 0, inferences per second no lower).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
} catch (err) {
  post({ type: 'failed', message: message(err) });
  port.close();
  throw err;
}

port.on('message', (m: ToThread) => {
  if (m.type === 'close') {
    void session.release().finally(() => port.close());
    return;
  }
  void (async () => {
    const t0 = performance.now();
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of m.inputs) feeds[t.name] = new ort.Tensor(t.dtype, t.data, t.dims);
      const out = await session.run(feeds);
      const ms = performance.now() - t0;
      const outputs: WireTensor[] = [];
      for (const name of session.outputNames) {
        const t = out[name]!;
        outputs.push({ name, dtype: t.type as WireTensor['dtype'], dims: [...t.dims], data: t.data as WireTensor['data'] });
      }
      post({ type: 'result', id: m.id, ms, outputs }, transferable(outputs));
    } catch (err) {
      post({ type: 'error', id: m.id, message: message(err) });
    }
  })();
});

post({ type: 'ready', inputs: [...session.inputNames], outputs: [...session.outputNames] });
