// The local inference API on the health server:
//   GET  /v1/models                 what is served (versions, backends, inputs, readiness)
//   GET  /v1/models/:name           one model
//   POST /v1/models/:name/infer     {"inputs": {NAME: TENSOR}, "outputEncoding"?: "json" | "base64"}
//                                   (the answer's "id" names it for POST /v1/models/:name/feedback, api/feedback.ts)
// where TENSOR is nested arrays, {"shape": [...], "data": [...]} or {"shape": [...], "base64": "..."}
// (raw little-endian). Errors name what was expected; nothing a client sends can crash the agent.
import type { FastifyInstance } from 'fastify';
import { admitInferenceRequests, clientGone, whyRefused, type Refused, type RefusalAnswer } from './http-admission.js';
import { EdgeError, Errors } from '../errors.js';
import type { IOSpec, Tensor, TensorMap } from '../runtime/backend.js';
import type { ModelRuntime } from '../runtime/model-runtime.js';
import { TensorInputError, tensorFromJson, tensorToJson } from '../tensor/json.js';
import { describeSpec } from '../tensor/shape.js';
import { outcomeOf, type ProtocolMetrics } from '../inference-protocol/metrics.js';

export interface ModelApiOptions {
  /** Largest element count of one input tensor. */
  maxElements: number;
  /** Requests per protocol (this API is "v1"). */
  metrics?: ProtocolMetrics;
}

const expected = (specs: IOSpec[]): Record<string, string> =>
  Object.fromEntries(specs.map((s) => [s.name, describeSpec(s)]));

function badInput(model: string, specs: IOSpec[], problem: string): EdgeError {
  const e = Errors.INPUT_INVALID(model, problem);
  return new EdgeError(e.code, e.message, 400, { expected: expected(specs) });
}

function encodeOutput(t: Tensor, encoding: 'json' | 'base64'): unknown {
  if (encoding === 'json') return tensorToJson(t);
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { dtype: t.dtype, shape: t.shape, base64: bytes.toString('base64') };
}

const INFER_PATH = /^\/v1\/models\/([^/?#]+)\/infer(?:\?.*)?$/;

/** The 429 answer for a refused request: which limit, with the figures that decided it. */
function refusal(name: string, a: Refused): RefusalAnswer {
  const e = Errors.OVERLOADED(`model ${name}`);
  return { status: e.statusCode, retryAfter: String(a.retryAfterSeconds), body: JSON.stringify({ error: { code: e.code, message: `${e.message} (${whyRefused(a)})` } }) };
}

export function registerModelRoutes(app: FastifyInstance, runtime: ModelRuntime, opts: ModelApiOptions): void {
  app.get('/v1/models', async () => ({ models: runtime.list() }));

  app.get<{ Params: { name: string } }>('/v1/models/:name', async (req) => {
    const m = runtime.list().find((x) => x.name === req.params.name);
    if (!m) throw Errors.MODEL_NOT_FOUND(req.params.name, runtime.list().map((x) => String(x.name)));
    return m;
  });

  const admission = admitInferenceRequests(app, runtime, (url) => {
    const m = INFER_PATH.exec(url);
    return m ? decodeURIComponent(m[1]!) : undefined;
  }, (name, a) => {
    opts.metrics?.observe('v1', name, 'overloaded', 0);
    return refusal(name, a);
  });

  app.post<{ Params: { name: string }; Body: unknown }>('/v1/models/:name/infer', {
    preHandler: admission,
    onResponse: async (req, reply) => {
      opts.metrics?.observe('v1', req.params.name, reply.statusCode < 400 ? 'success' : outcomeOf(reply.statusCode), reply.elapsedTime);
    },
  }, async (req, reply) => {
    const name = req.params.name;
    if (!runtime.has(name)) throw Errors.MODEL_NOT_FOUND(name, runtime.list().map((x) => String(x.name)));
    const specs = runtime.inputSpecs(name);
    const body = req.body;
    const usage = `send {"inputs": {${specs.map((s) => `"${s.name}": <${describeSpec(s)}>`).join(', ')}}}`;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badInput(name, specs, `the body must be a JSON object; ${usage}`);
    const b = body as Record<string, unknown>;
    const extra = Object.keys(b).filter((k) => k !== 'inputs' && k !== 'outputEncoding');
    if (extra.length) throw badInput(name, specs, `unknown key "${extra[0]}"; ${usage}`);
    const encoding = b.outputEncoding ?? 'json';
    if (encoding !== 'json' && encoding !== 'base64') throw badInput(name, specs, `"outputEncoding" must be "json" or "base64"`);
    const raw = b.inputs;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badInput(name, specs, `"inputs" must be an object of named tensors; ${usage}`);
    const inputs: TensorMap = {};
    for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
      const spec = specs.find((s) => s.name === key);
      if (!spec) throw badInput(name, specs, `unknown input "${key}"; ${usage}`);
      try {
        inputs[key] = tensorFromJson(spec, value, opts.maxElements);
      } catch (err) {
        if (err instanceof TensorInputError) throw badInput(name, specs, err.message);
        throw err;
      }
    }
    const intakeMs = reply.elapsedTime;
    let result;
    try {
      result = await runtime.infer(name, inputs, { signal: clientGone(reply) });
    } catch (err) {
      if (err instanceof EdgeError && err.code === Errors.INPUT_INVALID.code) throw new EdgeError(err.code, err.message, 400, { expected: expected(specs) });
      throw err;
    }
    // Where an answer's time went inside the agent (headers to answer): reading and parsing
    // the body, queue wait, backend; what a client sees beyond "total" is network and itself.
    reply.header('server-timing', `intake;dur=${intakeMs.toFixed(3)}, queue;dur=${result.queueMs}, backend;dur=${result.latencyMs}, total;dur=${reply.elapsedTime.toFixed(3)}`);
    return {
      model: result.model,
      version: result.version,
      id: result.id,
      backend: result.backend,
      latencyMs: result.latencyMs,
      queueMs: result.queueMs,
      outputs: Object.fromEntries(Object.entries(result.outputs).map(([k, t]) => [k, encodeOutput(t, encoding)])),
      predictions: result.predictions,
      members: result.members,
    };
  });
}
