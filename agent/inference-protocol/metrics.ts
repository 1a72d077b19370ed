// Requests per inference protocol (in the spirit of Triton's nv_inference_request_success /
// _failure / _duration), beside the runtime's per-model metrics: which front door the
// traffic uses and what each costs end to end inside the agent.
import type { Registry } from 'prom-client';
import { prom } from '../metrics.js';

export type Protocol = 'v1' | 'v2_http' | 'grpc';

export class ProtocolMetrics {
  readonly #requests: InstanceType<typeof prom.Counter<'protocol' | 'model' | 'outcome'>>;
  readonly #seconds: InstanceType<typeof prom.Histogram<'protocol' | 'model'>>;
  /** Model names that may become labels (a client's typo must not create a series). */
  readonly #known: (name: string) => boolean;

  constructor(registry: Registry, known: (name: string) => boolean) {
    this.#known = known;
    this.#requests = new prom.Counter({
      name: 'edge_inference_requests_total',
      help: 'Inference requests by protocol (v1, v2_http, grpc), model and outcome (success, or the error kind: bad_request, not_found, overloaded, unavailable, deadline, failed)',
      labelNames: ['protocol', 'model', 'outcome'],
      registers: [registry],
    });
    this.#seconds = new prom.Histogram({
      name: 'edge_inference_request_seconds',
      help: 'Successful inference requests by protocol and model: time from the request\'s arrival in the handler to its answer (parsing, queue, backend, encoding)',
      labelNames: ['protocol', 'model'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
  }

  /** One answered request; `outcome` is 'success' or the error kind; `ms` from its start. */
  observe(protocol: Protocol, model: string, outcome: string, ms: number): void {
    const label = this.#known(model) ? model : '(unknown)';
    this.#requests.inc({ protocol, model: label, outcome });
    if (outcome === 'success') this.#seconds.observe({ protocol, model: label }, ms / 1000);
  }
}

/** The outcome label of an error's HTTP-like status. */
export function outcomeOf(status: number): string {
  if (status === 400 || status === 413) return 'bad_request';
  if (status === 404) return 'not_found';
  if (status === 429) return 'overloaded';
  if (status === 503) return 'unavailable';
  if (status === 504) return 'deadline';
  if (status === 401) return 'unauthorized';
  return 'failed';
}
