// The Open Inference Protocol over HTTP/REST (KServe V2, Triton's HTTP API), on the health
// server beside /v1:
//   GET  /v2/health/live, /v2/health/ready, /v2
//   GET  /v2/models/NAME[/versions/V], /v2/models/NAME[/versions/V]/ready
//   POST /v2/models/NAME[/versions/V]/infer   JSON, or Triton's binary tensor data extension
// Errors are {"error": "..."} with the status of their kind. The token check, body limit and
// early admission (429 before the body is read) are the health server's, as for /v1.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EdgeError, Errors } from '../errors.js';
import { admitInferenceRequests, clientGone, whyRefused, type Refused, type RefusalAnswer } from '../api/http-admission.js';
import { tensorToJson } from '../tensor/json.js';
import { BinaryReader, HEADER_LENGTH, joinBody, splitBody } from './binary-data.js';
import type { InferenceService, InferRequest, InputTensor } from './inference-service.js';
import { outcomeOf, type ProtocolMetrics } from './metrics.js';

export interface V2RouteOptions {
  bodyLimitBytes: number;
  metrics: ProtocolMetrics;
}

type Params = { name: string; version?: string };

const INFER_PATH = /^\/v2\/models\/([^/?#]+)(?:\/versions\/[^/?#]+)?\/infer(?:\?.*)?$/;

const errorBody = (message: string): string => JSON.stringify({ error: message });

function refusal(metrics: ProtocolMetrics) {
  return (name: string, a: Refused): RefusalAnswer => {
    metrics.observe('v2_http', name, 'overloaded', 0);
    const e = Errors.OVERLOADED(`model ${name}`);
    return { status: e.statusCode, retryAfter: String(a.retryAfterSeconds), body: errorBody(`${e.message} (${whyRefused(a)})`) };
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The protocol's request JSON (plus the binary part) as an InferRequest; `binaryOut`: outputs to send as binary. */
export function parseInferBody(params: Params, json: unknown, binary: Buffer): { request: InferRequest; binaryOut: (name: string) => boolean } {
  const usage = 'send {"inputs": [{"name": ..., "shape": [...], "datatype": "FP32", "data": [...]}], "outputs"?: [{"name": ...}]}';
  if (!isObject(json)) throw Errors.BAD_REQUEST(`the body must be a JSON object; ${usage}`);
  const extra = Object.keys(json).filter((k) => !['id', 'parameters', 'inputs', 'outputs'].includes(k));
  if (extra.length) throw Errors.BAD_REQUEST(`unknown key "${extra[0]}"; ${usage}`);
  if (json.id !== undefined && typeof json.id !== 'string') throw Errors.BAD_REQUEST('"id" must be a string');
  if (json.parameters !== undefined && !isObject(json.parameters)) throw Errors.BAD_REQUEST('"parameters" must be an object');
  if (!Array.isArray(json.inputs)) throw Errors.BAD_REQUEST(`"inputs" must be a list of tensors; ${usage}`);
  const reader = new BinaryReader(binary);
  const inputs: InputTensor[] = json.inputs.map((x: unknown, i: number) => {
    if (!isObject(x)) throw Errors.BAD_REQUEST(`inputs[${i}] must be an object; ${usage}`);
    const bad = Object.keys(x).filter((k) => !['name', 'shape', 'datatype', 'parameters', 'data'].includes(k));
    if (bad.length) throw Errors.BAD_REQUEST(`inputs[${i}]: unknown key "${bad[0]}"; ${usage}`);
    if (x.parameters !== undefined && !isObject(x.parameters)) throw Errors.BAD_REQUEST(`inputs[${i}]: "parameters" must be an object`);
    const size = x.parameters?.binary_data_size;
    if (size === undefined) return { name: x.name, datatype: x.datatype, shape: x.shape, data: x.data };
    if (x.data !== undefined) throw Errors.BAD_REQUEST(`input ${JSON.stringify(x.name)}: give "data" or "binary_data_size", not both`);
    return { name: x.name, datatype: x.datatype, shape: x.shape, raw: reader.take(String(x.name), size) };
  });
  reader.finish();
  let outputs: string[] | undefined;
  const binaryByName = new Map<string, boolean>();
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw Errors.BAD_REQUEST('"outputs" must be a list of {"name": ..., "parameters"?: {"binary_data": true}}');
    outputs = json.outputs.map((o: unknown, i: number) => {
      if (!isObject(o) || typeof o.name !== 'string') throw Errors.BAD_REQUEST(`outputs[${i}] must be {"name": ..., "parameters"?: {...}}`);
      if (o.parameters !== undefined && !isObject(o.parameters)) throw Errors.BAD_REQUEST(`outputs[${i}]: "parameters" must be an object`);
      const b = o.parameters?.binary_data;
      if (b !== undefined && typeof b !== 'boolean') throw Errors.BAD_REQUEST(`outputs[${i}]: "binary_data" must be true or false`);
      if (b !== undefined) binaryByName.set(o.name, b);
      return o.name;
    });
  }
  const all = (json.parameters as Record<string, unknown> | undefined)?.binary_data_output;
  if (all !== undefined && typeof all !== 'boolean') throw Errors.BAD_REQUEST('"binary_data_output" must be true or false');
  return {
    request: { model: params.name, version: params.version, id: json.id as string | undefined, inputs, outputs },
    binaryOut: (name) => binaryByName.get(name) ?? all === true,
  };
}

export function registerV2Routes(app: FastifyInstance, service: InferenceService, opts: V2RouteOptions): void {
  const admission = admitInferenceRequests(app, service.runtime, (url) => {
    const m = INFER_PATH.exec(url);
    return m ? decodeURIComponent(m[1]!) : undefined;
  }, refusal(opts.metrics));

  void app.register(async (v2) => {
    // Bodies are read as bytes: JSON, or a JSON header followed by binary tensors.
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimitBytes }, (_req, body, done) => done(null, body));

    v2.setErrorHandler((err: FastifyError | EdgeError, req, reply) => {
      const status = err instanceof EdgeError ? err.statusCode : err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500 && !(err instanceof EdgeError)) req.log.error({ err }, 'request failed');
      if (status === 429) reply.header('retry-after', '1');
      const message = status === 413 ? `request body is larger than the limit of ${opts.bodyLimitBytes} bytes (health.bodyLimitBytes)` : err.message;
      return reply.status(status).type('application/json; charset=utf-8').send(errorBody(message));
    });
    v2.setNotFoundHandler((req, reply) => {
      reply.status(404).type('application/json; charset=utf-8').send(errorBody(`no route ${req.method} ${req.url} (the protocol's routes: /v2, /v2/health/live, /v2/health/ready, /v2/models/NAME[/versions/V][/ready|/infer])`));
    });

    v2.get('/health/live', async () => ({ live: true }));
    v2.get('/health/ready', async (_req, reply) => {
      const ready = service.ready();
      return reply.status(ready ? 200 : 400).send(ready ? { ready } : { ready, error: `not ready: ${service.notReady()}` });
    });
    v2.get('/', async () => service.serverMetadata());

    const metadata = async (req: FastifyRequest<{ Params: Params }>) => service.modelMetadata(req.params.name, req.params.version);
    v2.get('/models/:name', metadata);
    v2.get('/models/:name/versions/:version', metadata);

    const ready = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      const ok = service.modelReady(req.params.name, req.params.version);
      const what = `model ${req.params.name}${req.params.version ? ` version ${req.params.version}` : ''}`;
      return reply.status(ok ? 200 : 400).send(ok ? { name: req.params.name, ready: true } : { name: req.params.name, ready: false, error: `${what} is not ready (loading, or failed to load: see GET /v1/models/${req.params.name})` });
    };
    v2.get('/models/:name/ready', ready);
    v2.get('/models/:name/versions/:version/ready', ready);

    const infer = async (req: FastifyRequest<{ Params: Params; Body: Buffer }>, reply: FastifyReply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const { json, binary } = splitBody(body, req.headers[HEADER_LENGTH]);
      const { request, binaryOut } = parseInferBody(req.params, json, binary);
      const res = await service.infer({ ...request, signal: clientGone(reply) });
      const parts: Buffer[] = [];
      const outputs = res.outputs.map((o) => {
        if (!binaryOut(o.name)) return { name: o.name, datatype: o.datatype, shape: o.shape, data: tensorToJson(o.tensor).data };
        const d = o.tensor.data;
        parts.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
        return { name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: d.byteLength } };
      });
      const header = { model_name: res.model_name, model_version: res.model_version, ...(res.id ? { id: res.id } : {}), parameters: res.parameters, outputs };
      if (!parts.length) return reply.type('application/json; charset=utf-8').send(JSON.stringify(header));
      const { body: out, headerLength } = joinBody(header, parts);
      return reply.header('inference-header-content-length', String(headerLength)).type('application/octet-stream').send(out);
    };
    const onResponse = async (req: FastifyRequest, reply: FastifyReply) => {
      opts.metrics.observe('v2_http', (req.params as Params).name, reply.statusCode < 400 ? 'success' : outcomeOf(reply.statusCode), reply.elapsedTime);
    };
    v2.post<{ Params: Params; Body: Buffer }>('/models/:name/infer', { preHandler: admission, onResponse }, infer);
    v2.post<{ Params: Params; Body: Buffer }>('/models/:name/versions/:version/infer', { preHandler: admission, onResponse }, infer);
  }, { prefix: '/v2' });
}
