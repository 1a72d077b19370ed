// The Open Inference Protocol over gRPC: inference.GRPCInferenceService from
// grpc_predict_v2.proto (the protocol's published file), served with @grpc/grpc-js on its own
// port (grpc.port; no server without it). Every call goes through the same InferenceService,
// runtime admission and token as /v1 and /v2; EdgeErrors become gRPC status codes.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import type { AgentContext, Component } from '../component.js';
import { EdgeError, Errors, describe } from '../errors.js';
import { packageRoot } from '../native.js';
import { checkPrivateKeyFile } from '../security/key-file.js';
import { whyRefused } from '../api/http-admission.js';
import type { InferenceService, InputTensor } from './inference-service.js';
import { outcomeOf, type ProtocolMetrics } from './metrics.js';
import { statusOf } from './grpc-status.js';

export const PROTO_FILE = path.join(packageRoot, 'agent', 'inference-protocol', 'grpc_predict_v2.proto');

/** How messages decode: field names as in the .proto, int64 as numbers (shapes, int64 values). */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

type Unary = grpc.handleUnaryCall<any, any>;

/** Which typed contents field holds each datatype's values (the protocol's InferTensorContents). */
const CONTENTS_FIELD: Record<string, string> = {
  BOOL: 'bool_contents', INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
};

function typedValues(name: string, datatype: unknown, contents: Record<string, unknown[]> | null | undefined): unknown[] | undefined {
  if (!contents) return undefined;
  const field = typeof datatype === 'string' ? CONTENTS_FIELD[datatype] : undefined;
  const given = Object.entries(contents).filter(([, v]) => Array.isArray(v) && v.length > 0).map(([k]) => k);
  if (given.length === 0) return undefined;
  if (!field || given.length > 1 || given[0] !== field) {
    throw Errors.BAD_REQUEST(`input "${name}": ${JSON.stringify(datatype)} values go in contents.${field ?? '(the field of its datatype)'}, got ${given.join(', ')}`);
  }
  return contents[field];
}

const param = (v: string) => ({ string_param: v });

/** Marks a request whose bytes are not a valid message (the handler answers INVALID_ARGUMENT). */
const MALFORMED = Symbol('malformed');

/**
 * The service with decoding that does not throw: grpc-js answers a message it cannot decode
 * with INTERNAL; the client's mistake is INVALID_ARGUMENT, with protobuf's reason.
 */
function answerMalformed(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(Object.entries(service).map(([name, m]) => [name, {
    ...m,
    requestDeserialize: (bytes: Buffer) => {
      try {
        return m.requestDeserialize(bytes);
      } catch (err) {
        return { [MALFORMED]: `the request is not a valid ${name}Request message (${describe(err)})` };
      }
    },
  }]));
}

export class GrpcInferenceServer implements Component {
  readonly name = 'grpc';
  readonly #ctx: AgentContext;
  readonly #service: InferenceService;
  readonly #metrics: ProtocolMetrics;
  #server: grpc.Server | undefined;
  #port: number | undefined;

  constructor(ctx: AgentContext, service: InferenceService, metrics: ProtocolMetrics) {
    this.#ctx = ctx;
    this.#service = service;
    this.#metrics = metrics;
  }

  /** The bound port once started (grpc.port 0 picks one); undefined when off. */
  get port(): number | undefined {
    return this.#port;
  }

  get #cfg() {
    return this.#ctx.config.grpc;
  }

  async start(): Promise<void> {
    const cfg = this.#cfg;
    if (cfg.port === undefined) return;
    const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(definition) as any;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': cfg.maxMessageBytes,
      'grpc.max_send_message_length': cfg.maxMessageBytes,
    });
    server.addService(answerMalformed(pkg.inference.GRPCInferenceService.service), this.#handlers());
    let credentials = grpc.ServerCredentials.createInsecure();
    if (cfg.cert && cfg.key) {
      checkPrivateKeyFile(cfg.key, 'grpc.key');
      credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(cfg.cert), private_key: readFileSync(cfg.key) }], false);
    }
    const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
    this.#port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${cfg.port}`, credentials, (err, port) => (err ? reject(Errors.GRPC_BIND(`${host}:${cfg.port}`, err.message)) : resolve(port)));
    });
    this.#server = server;
    this.#ctx.log.info({ address: `${host}:${this.#port}`, tls: Boolean(cfg.cert) }, 'gRPC inference service listening');
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    // In-flight calls finish; a call that does not within 2 s (a stalled client) is cut.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  status(): Record<string, unknown> {
    return { port: this.#port ?? null, host: this.#cfg.host, tls: Boolean(this.#cfg.cert), maxMessageBytes: this.#cfg.maxMessageBytes };
  }

  #authorized(metadata: grpc.Metadata): boolean {
    const token = this.#ctx.config.health.token;
    if (!token) return true;
    const want = Buffer.from(`Bearer ${token}`);
    const got = Buffer.from(String(metadata.get('authorization')[0] ?? ''));
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /** A handler with the token check and errors mapped to status codes. */
  #unary(fn: (call: grpc.ServerUnaryCall<any, any>) => unknown | Promise<unknown>): Unary {
    return (call, callback) => {
      if (!this.#authorized(call.metadata)) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'this service needs "authorization: Bearer <health.token>" metadata' });
        return;
      }
      const malformed = (call.request as { [MALFORMED]?: string } | undefined)?.[MALFORMED];
      if (malformed) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: malformed });
        return;
      }
      Promise.resolve().then(() => fn(call)).then((value) => callback(null, value), (err: unknown) => callback(this.#toStatus(err)));
    };
  }

  #toStatus(err: unknown): Partial<grpc.StatusObject> {
    if (err instanceof EdgeError) return { code: statusOf(err.statusCode), details: err.message };
    this.#ctx.log.error({ err: describe(err) }, 'gRPC call failed');
    return { code: grpc.status.INTERNAL, details: `internal error: ${describe(err)}` };
  }

  #handlers(): grpc.UntypedServiceImplementation {
    const s = this.#service;
    return {
      ServerLive: this.#unary(() => ({ live: true })),
      ServerReady: this.#unary(() => ({ ready: s.ready() })),
      ServerMetadata: this.#unary(() => s.serverMetadata()),
      ModelReady: this.#unary((call) => ({ ready: s.modelReady(call.request.name, call.request.version || undefined) })),
      ModelMetadata: this.#unary((call) => s.modelMetadata(call.request.name, call.request.version || undefined)),
      ModelInfer: this.#unary((call) => this.#infer(call)),
    };
  }

  async #infer(call: grpc.ServerUnaryCall<any, any>): Promise<unknown> {
    const started = performance.now();
    const req = call.request;
    const name: string = req.model_name;
    let outcome = 'failed';
    let release: (() => void) | undefined;
    try {
      // The same admission as HTTP: decided before the tensors are decoded.
      const a = this.#service.runtime.admit(name);
      if (a && !a.admitted) throw new EdgeError(Errors.OVERLOADED.code, `${Errors.OVERLOADED(`model ${name}`).message} (${whyRefused(a)})`, 429);
      if (a?.admitted) release = a.release;
      // Deadlines: a call past its deadline is not run (grpc-js has answered DEADLINE_EXCEEDED).
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
      const abandoned = (): boolean => call.cancelled || (Number.isFinite(deadlineMs) && deadlineMs <= Date.now());
      if (abandoned()) throw Errors.DEADLINE_EXCEEDED(`model ${name}`);
      const gone = new AbortController();
      call.once('cancelled', () => gone.abort());
      const raw: Buffer[] = req.raw_input_contents ?? [];
      const inputs: InputTensor[] = (req.inputs ?? []).map((t: any, i: number): InputTensor => {
        const typed = typedValues(t.name, t.datatype, t.contents);
        if (raw.length > 0) {
          if (typed) throw Errors.BAD_REQUEST(`input "${t.name}": with raw_input_contents, no input may carry contents`);
          return { name: t.name, datatype: t.datatype, shape: t.shape, raw: raw[i] };
        }
        return { name: t.name, datatype: t.datatype, shape: t.shape, data: typed };
      });
      if (raw.length > 0 && raw.length !== inputs.length) {
        throw Errors.BAD_REQUEST(`raw_input_contents has ${raw.length} entries for ${inputs.length} inputs; give one per input, in the order of "inputs"`);
      }
      const res = await this.#service.infer({
        model: name,
        version: req.model_version || undefined,
        id: req.id || undefined,
        inputs,
        outputs: req.outputs?.length ? req.outputs.map((o: any) => o.name) : undefined,
        abandoned,
        signal: gone.signal,
      });
      outcome = 'success';
      const asRaw = raw.length > 0;
      return {
        model_name: res.model_name,
        model_version: res.model_version,
        id: res.id ?? '',
        parameters: Object.fromEntries(Object.entries(res.parameters).map(([k, v]) => [k, param(v)])),
        outputs: res.outputs.map((o) => ({
          name: o.name,
          datatype: o.datatype,
          shape: o.shape,
          contents: asRaw ? undefined : { [CONTENTS_FIELD[o.datatype]!]: o.tensor.data instanceof BigInt64Array ? Array.from(o.tensor.data, Number) : Array.from(o.tensor.data) },
        })),
        raw_output_contents: asRaw ? res.outputs.map((o) => Buffer.from(o.tensor.data.buffer, o.tensor.data.byteOffset, o.tensor.data.byteLength)) : [],
      };
    } catch (err) {
      outcome = err instanceof EdgeError ? outcomeOf(err.statusCode) : 'failed';
      throw err;
    } finally {
      release?.();
      this.#metrics.observe('grpc', name, outcome, performance.now() - started);
    }
  }
}
