// The local HTTP server: health, readiness, metrics and status. Later parts of the agent
// (inference, drift, the status page) add their routes to the same instance.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyError, type FastifyReply } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { EdgeError, Errors } from '../errors.js';
import type { Logger } from '../log.js';
import { registerStatusPage } from './ui.js';
import { lazyCompilers } from './compilers.js';

export interface HealthSources {
  /** Reasons the agent is not ready; empty when ready. */
  notReady(): string[];
  /** Reported but not failures (for example: broker unreachable). */
  warnings(): string[];
  status(): Record<string, unknown>;
  metrics: Registry;
}

/**
 * Answers a request before fastify routes it (true: answered, false: fastify takes it). The
 * inference API's admission uses it: under overload most requests are refused, and a 429
 * through fastify's routing, hooks and reply costs several times the bare HTTP parse on the
 * one event loop the admitted requests need.
 */
export type EarlyResponder = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
const earlyResponders = new WeakMap<FastifyInstance, EarlyResponder[]>();

/** Adds an early responder; it sees only requests that passed the token check. */
export function addEarlyResponder(app: FastifyInstance, fn: EarlyResponder): void {
  const list = earlyResponders.get(app);
  if (!list) throw new Error('addEarlyResponder: not a server from buildHealthServer()');
  list.push(fn);
}

// The page itself carries no data; its fetches carry the token.
const OPEN_ROUTES = new Set(['/healthz', '/', '/ui/app.js', '/ui/style.css', '/ui/vendor/chart.js']);

export function buildHealthServer(config: Config['health'], log: Logger, sources: () => HealthSources): FastifyInstance {
  const expectedAuth = config.token ? Buffer.from(`Bearer ${config.token}`) : undefined;
  const authorized = (header: string | undefined): boolean => {
    if (!expectedAuth) return true;
    const got = Buffer.from(header ?? '');
    return got.length === expectedAuth.length && timingSafeEqual(got, expectedAuth);
  };
  const early: EarlyResponder[] = [];
  const app = Fastify({
    schemaController: { compilersFactory: lazyCompilers() },
    // Our own http.Server, so early responders see a request before fastify does. Fastify
    // does not apply its timeouts to a server it did not make: set here.
    serverFactory: (handler) => {
      const server = http.createServer((req, res) => {
        if (early.length && authorized(req.headers.authorization)) {
          for (const fn of early) if (fn(req, res)) return;
        }
        handler(req, res);
      });
      server.requestTimeout = config.requestTimeoutMs;
      server.setTimeout(config.requestTimeoutMs);
      server.keepAliveTimeout = 72_000; // fastify's default
      return server;
    },
    // Request lines only at debug: a busy inference API must not flood journald.
    loggerInstance: log.child({ component: 'http' }, { level: log.level === 'trace' || log.level === 'debug' ? log.level : 'warn' }) as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs,
    return503OnClosing: true,
    // Errors fastify raises before routing (a bad percent-escape in the URL, say) get the
    // agent's envelope too, not fastify's own.
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as unknown as FastifyReply).status(status).send({ error: { code: Errors.BAD_REQUEST.code, message: `${err.message}; check the request line (percent-escapes in the path must be %XX with hex digits)` } });
    },
  });

  earlyResponders.set(app, early);

  if (config.token) {
    app.addHook('onRequest', async (req) => {
      if (OPEN_ROUTES.has(req.url)) return;
      if (!authorized(req.headers.authorization)) throw Errors.UNAUTHORIZED();
    });
  }

  app.setErrorHandler((err: FastifyError | EdgeError, req, reply) => {
    if (err instanceof EdgeError) {
      if (err.statusCode === 429) reply.header('retry-after', '1');
      return reply.status(err.statusCode).send({ error: { code: err.code, message: err.message, details: err.details } });
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.status(status).send({ error: clientError(err, status, req.url, config.bodyLimitBytes) });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: Errors.NOT_FOUND.code, message: `no route ${req.method} ${req.url}` } });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const s = sources();
    const reasons = s.notReady();
    const body = { ready: reasons.length === 0, reasons, warnings: s.warnings() };
    return reply.status(reasons.length ? 503 : 200).send(body);
  });

  app.get('/metrics', async (_req, reply) => {
    const registry = sources().metrics;
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });

  app.get('/v1/status', async () => sources().status());
  registerStatusPage(app);

  return app;
}

/**
 * fastify's own refusals (body parsing, URL decoding) in the agent's envelope and codes, with
 * what was expected: a client sees one error format whichever layer refused its request.
 */
function clientError(err: FastifyError, status: number, url: string, bodyLimit: number): { code: string; message: string } {
  if (status >= 500 || !err.code?.startsWith('FST_')) return { code: err.code ?? Errors.INTERNAL.code, message: err.message };
  const infer = /\/infer(\?|$)/.test(url);
  const code = infer ? Errors.INPUT_INVALID.code : Errors.BAD_REQUEST.code;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: Errors.BODY_TOO_LARGE.code, message: Errors.BODY_TOO_LARGE(bodyLimit).message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code, message: `expected a JSON body with "content-type: application/json" (${err.message})` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code, message: 'the body is empty; expected a JSON object' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code, message: `the body is not valid JSON (${err.message.replace(/^Body is not valid JSON but content-type is set to 'application\/json'\s*/, '') || 'parse error'}); expected a JSON object` };
    case 'FST_ERR_BAD_URL':
      return { code: Errors.BAD_REQUEST.code, message: `the URL is not valid (a bad percent-escape?): ${err.message}` };
    default:
      return { code, message: err.message };
  }
}
