// The local inference API on the health server:
//   GET  /v1/models                 what is served (versions, backends, inputs, readiness)
//   GET  /v1/models/:name           one model
//   POST /v1/models/:name/infer     {"inputs": {NAME: TENSOR}, "outputEncoding"?: "json" | "base64"}
// where TENSOR is nested arrays, {"shape": [...], "data": [...]} or {"shape": [...], "base64": "..."}
// (raw little-endian). Errors name what was expected; nothing a client sends can crash the agent.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { addEarlyResponder } from '../health/server.js';
import { EdgeError, Errors } from '../errors.js';
import type { IOSpec, Tensor, TensorMap } from '../runtime/backend.js';
import type { ModelRuntime } from '../runtime/model-runtime.js';
import type { Admission } from '../runtime/admission.js';
import { TensorInputError, tensorFromJson, tensorToJson } from '../tensor/json.js';
import { describeSpec } from '../tensor/shape.js';

export interface ModelApiOptions {
  /** Largest element count of one input tensor. */
  maxElements: number;
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

/** How long ago the client sent the request, from its x-request-start (ms since the epoch, or t=...). */
function requestAge(header: string | string[] | undefined): number | undefined {
  const sent = Number(/^(?:t=)?(\d+(?:\.\d+)?)$/.exec(String(header ?? ''))?.[1]);
  return Number.isFinite(sent) ? Date.now() - sent : undefined;
}

/** The 429 answer for a refused request: which limit, with the figures that decided it. */
function refusal(name: string, a: Extract<Admission, { admitted: false }>): { status: number; retryAfter: string; body: string } {
  const why = a.reason === 'queue_full'
    ? `${a.inFlight} requests in flight (runtime.queueLimit)`
    : a.reason === 'too_old'
      ? 'sent too long ago by its x-request-start (runtime.maxRequestAgeMs)'
      : `${a.inFlight} requests in flight, expected wait ${Math.round(a.expectedWaitMs)} ms over the budget (runtime.queueWaitFactor, runtime.maxQueueWaitMs)`;
  const e = Errors.OVERLOADED(`model ${name}`);
  return { status: e.statusCode, retryAfter: String(a.retryAfterSeconds), body: JSON.stringify({ error: { code: e.code, message: `${e.message} (${why})` } }) };
}

export function registerModelRoutes(app: FastifyInstance, runtime: ModelRuntime, opts: ModelApiOptions): void {
  app.get('/v1/models', async () => ({ models: runtime.list() }));

  app.get<{ Params: { name: string } }>('/v1/models/:name', async (req) => {
    const m = runtime.list().find((x) => x.name === req.params.name);
    if (!m) throw Errors.MODEL_NOT_FOUND(req.params.name, runtime.list().map((x) => String(x.name)));
    return m;
  });

  // Refusal from the request line and headers alone, before fastify routes the request (an
  // early responder on the health server's http.Server): under overload most requests are
  // refused, and reading and parsing their bodies, or even routing them through fastify, on
  // the one event loop is what slows the admitted ones. A request the gate would take is not
  // counted yet: it takes its place once its body has arrived (the route's preHandler), and
  // holds it until its response closes. Counted from the headers, 65 connections that send
  // headers and never a body held every place until health.requestTimeoutMs (issue 26).
  addEarlyResponder(app, (req, res) => {
    if (req.method !== 'POST') return false;
    const m = INFER_PATH.exec(req.url ?? '');
    if (!m) return false;
    let name: string;
    try {
      name = decodeURIComponent(m[1]!);
    } catch {
      return false; // fastify answers the malformed path
    }
    const a = runtime.admit(name, requestAge(req.headers['x-request-start']));
    if (!a) return false; // not served here: the handler answers 404
    if (a.admitted) {
      a.release(); // would be taken: counted once the body is in (preHandler below)
      return false;
    }
    const r = refusal(name, a);
    // The body is not read (Node discards it, keeping the connection); a client still sending
    // it learns at once and may stop.
    res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(r.body), 'retry-after': r.retryAfter });
    res.end(r.body);
    return true;
  });
  // Every request is counted here, once its body has arrived (including one that reached the
  // route without passing the early check: a path spelled so that only fastify's router
  // matched it).
  const admission = async (req: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
    const a = runtime.admit(req.params.name, requestAge(req.headers['x-request-start']));
    if (!a) return;
    if (a.admitted) {
      reply.raw.once('close', a.release);
      return;
    }
    const r = refusal(req.params.name, a);
    return reply.status(r.status).header('retry-after', r.retryAfter).type('application/json; charset=utf-8').send(r.body);
  };

  app.post<{ Params: { name: string }; Body: unknown }>('/v1/models/:name/infer', { preHandler: admission }, async (req, reply) => {
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
      result = await runtime.infer(name, inputs);
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
      backend: result.backend,
      latencyMs: result.latencyMs,
      queueMs: result.queueMs,
      outputs: Object.fromEntries(Object.entries(result.outputs).map(([k, t]) => [k, encodeOutput(t, encoding)])),
      predictions: result.predictions,
      members: result.members,
    };
  });
}
