// Prometheus metrics of the inference runtime.
import type { Registry } from 'prom-client';
import { prom } from '../metrics.js';

export type ErrorKind = 'bad_input' | 'overloaded' | 'not_found' | 'not_ready' | 'deadline' | 'backend' | 'load';

export class RuntimeMetrics {
  readonly latency: InstanceType<typeof prom.Histogram<'model' | 'version' | 'backend'>>;
  readonly errors: InstanceType<typeof prom.Counter<'model' | 'kind'>>;
  readonly queueDepth: InstanceType<typeof prom.Gauge<'model'>>;
  readonly refused: InstanceType<typeof prom.Counter<'model' | 'reason'>>;
  readonly shadowAgreement: InstanceType<typeof prom.Counter<'model' | 'candidate' | 'agree'>>;

  constructor(registry: Registry) {
    this.latency = new prom.Histogram({
      name: 'edge_model_inference_seconds',
      help: 'Inference latency per model, version and backend (queue wait excluded)',
      labelNames: ['model', 'version', 'backend'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.errors = new prom.Counter({
      name: 'edge_model_errors_total',
      help: 'Inference requests refused or failed, by model and kind',
      labelNames: ['model', 'kind'],
      registers: [registry],
    });
    this.queueDepth = new prom.Gauge({
      name: 'edge_model_queue_depth',
      help: 'Requests waiting or running per model',
      labelNames: ['model'],
      registers: [registry],
    });
    this.refused = new prom.Counter({
      name: 'edge_model_admission_refused_total',
      help: 'Inference requests answered 429 before their body was read, by model and reason (queue_full: runtime.queueLimit; wait_budget: expected wait over the budget; too_old: x-request-start older than runtime.maxRequestAgeMs)',
      labelNames: ['model', 'reason'],
      registers: [registry],
    });
    this.shadowAgreement = new prom.Counter({
      name: 'edge_model_shadow_runs_total',
      help: 'Shadow runs of a candidate version, by top-1 agreement with the active version',
      labelNames: ['model', 'candidate', 'agree'],
      registers: [registry],
    });
  }
}
