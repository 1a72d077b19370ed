// Admission of HTTP inference requests from the request line and headers alone, before
// fastify routes the request (an early responder on the health server's http.Server): under
// overload most requests are refused, and reading and parsing their bodies, or even routing
// them through fastify, on the one event loop is what slows the admitted ones. A request the
// gate would take is not counted yet: it takes its place once its body has arrived (the
// route's preHandler), and holds it until its response closes. Counted from the headers, 65
// connections that send headers and never a body held every place until
// health.requestTimeoutMs (issue 26). /v1 and the Open Inference Protocol's /v2 share it;
// each words its own refusal.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { addEarlyResponder } from '../health/server.js';
import type { Admission } from '../runtime/admission.js';
import type { ModelRuntime } from '../runtime/model-runtime.js';

export type Refused = Extract<Admission, { admitted: false }>;

/** A refusal's answer: status, Retry-After and the JSON body in the API's own error form. */
export interface RefusalAnswer { status: number; retryAfter: string; body: string }

/** How long ago the client sent the request, from its x-request-start (ms since the epoch, or t=...). */
export function requestAge(header: string | string[] | undefined): number | undefined {
  const sent = Number(/^(?:t=)?(\d+(?:\.\d+)?)$/.exec(String(header ?? ''))?.[1]);
  return Number.isFinite(sent) ? Date.now() - sent : undefined;
}

/** Which limit refused a request, with the figures that decided it. */
export function whyRefused(a: Refused): string {
  return a.reason === 'queue_full'
    ? `${a.inFlight} requests in flight (runtime.queueLimit)`
    : a.reason === 'too_old'
      ? 'sent too long ago by its x-request-start (runtime.maxRequestAgeMs)'
      : `${a.inFlight} requests in flight, expected wait ${Math.round(a.expectedWaitMs)} ms over the budget (runtime.queueWaitFactor, runtime.maxQueueWaitMs)`;
}

/**
 * Refuses early the POST requests whose path `modelOf` maps to a model name and that the gate
 * would refuse; returns the preHandler hook that counts every request once its body is in
 * (including one that reached the route without passing the early check: a path spelled so
 * that only fastify's router matched it).
 */
export function admitInferenceRequests(
  app: FastifyInstance,
  runtime: ModelRuntime,
  modelOf: (url: string) => string | undefined,
  refuse: (name: string, a: Refused) => RefusalAnswer,
): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  addEarlyResponder(app, (req, res) => {
    if (req.method !== 'POST') return false;
    let name: string | undefined;
    try {
      name = modelOf(req.url ?? '');
    } catch {
      return false; // fastify answers the malformed path
    }
    if (name === undefined) return false;
    const a = runtime.admit(name, requestAge(req.headers['x-request-start']));
    if (!a) return false; // not served here: the handler answers 404
    if (a.admitted) {
      a.release(); // would be taken: counted once the body is in (the preHandler)
      return false;
    }
    const r = refuse(name, a);
    // The body is not read (Node discards it, keeping the connection); a client still sending
    // it learns at once and may stop.
    res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(r.body), 'retry-after': r.retryAfter });
    res.end(r.body);
    return true;
  });
  return async (req, reply) => {
    const name = (req.params as { name: string }).name;
    const a = runtime.admit(name, requestAge(req.headers['x-request-start']));
    if (!a) return;
    if (a.admitted) {
      reply.raw.once('close', a.release);
      return;
    }
    const r = refuse(name, a);
    return reply.status(r.status).header('retry-after', r.retryAfter).type('application/json; charset=utf-8').send(r.body);
  };
}

/**
 * A signal that aborts when the client goes away before its answer: its request then leaves
 * the model's queue (agent/runtime/queue.ts), as its admission place was freed.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const res = reply.raw;
  if (res.destroyed && !res.writableFinished) ac.abort();
  else res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}
