// The daemon: builds its components from the config, starts them in order, reports health,
// and stops them in reverse order. The data path is visible in the order of components.
import { mkdirSync, accessSync, constants } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import type { AgentContext, Component } from './component.js';
import { buildHealthServer } from './health/server.js';
import { ReadinessLog } from './health/readiness-log.js';
import { createLogger, type Logger } from './log.js';
import { createRegistry, prom } from './metrics.js';
import { EventLoopLag } from './health/event-loop-lag.js';
import { SystemdNotifier } from './systemd.js';
import { AGENT_VERSION } from './version.js';
import { describe } from './errors.js';
import { TelemetryBuffer } from './telemetry/buffer.js';
import { FleetLink } from './fleet/link.js';
import { SecurityPolicy } from './security/policy.js';
import { ModelRollouts } from './rollout/model-rollouts.js';
import { cpuFeatures, kernelVariant } from './hardware.js';
import { registerTelemetryRoutes } from './api/telemetry.js';
import { ModelRuntime } from './runtime/model-runtime.js';
import { registerModelRoutes } from './api/models.js';
import { DriftMonitor } from './drift/monitor.js';
import { ProtocolMetrics } from './inference-protocol/metrics.js';
import { InferenceService } from './inference-protocol/inference-service.js';
import { registerV2Routes } from './inference-protocol/rest.js';
import { GrpcInferenceServer } from './inference-protocol/grpc-server.js';
import { giveFeedback, registerFeedbackRoutes } from './api/feedback.js';
import { FieldExamples } from './learning/field-examples.js';
import { FieldAccuracy } from './learning/field-accuracy.js';
import { SelfUpdate } from './update/component.js';

export interface AgentOptions {
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Extra components, started after the built-in ones (tests, embedding). */
  components?: (ctx: AgentContext) => Component[];
}

export class Agent {
  readonly config: Config;
  readonly log: Logger;
  readonly http: FastifyInstance;
  readonly context: AgentContext;
  readonly components: Component[] = [];
  readonly systemd: SystemdNotifier;
  /** Key-file checks, package signature verifier, command signatures (starts before everything). */
  readonly security: SecurityPolicy;
  /** The store-and-forward buffer every part records telemetry into (first component). */
  readonly telemetry: TelemetryBuffer;
  readonly models: ModelRuntime;
  /** Per model a committed version and a candidate: probation, commit, rollback (crash loops included). */
  readonly rollouts: ModelRollouts;
  /** Drift detection: profiles inferences against each model's reference, reports per window. */
  readonly drift: DriftMonitor;
  /** The MQTT fleet link: status, commands, telemetry drain, model sync. */
  readonly fleet: FleetLink;
  /** The Open Inference Protocol over gRPC on its own port (grpc.port; off without it). */
  readonly grpc: GrpcInferenceServer;
  /** Self-update (only with update.root). */
  readonly update: SelfUpdate | undefined;
  #started: Component[] = [];
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopPromise: Promise<void> | undefined;
  readonly #readiness: ReadinessLog;

  constructor(config: Config, opts: AgentOptions = {}) {
    this.config = config;
    this.log = opts.log ?? createLogger(config.log.level, { deviceId: config.deviceId });
    const metrics = createRegistry({ device: config.deviceId });
    this.http = buildHealthServer(config.health, this.log, () => ({
      notReady: () => this.notReady(),
      warnings: () => this.warnings(),
      status: () => this.status(),
      metrics,
    }));
    this.context = { config, log: this.log, metrics, http: this.http, startedAt: Date.now() };
    this.systemd = new SystemdNotifier(this.log, opts.env);
    this.#readiness = new ReadinessLog(this, this.log, (text) => this.systemd.notify(`STATUS=${text}`));
    new prom.Gauge({
      name: 'edge_agent_info',
      help: 'Agent version and kernel variant (always 1)',
      labelNames: ['version', 'cpu_features'],
      registers: [metrics],
    }).set({ version: AGENT_VERSION, cpu_features: cpuFeatures() }, 1);
    new prom.Gauge({
      name: 'edge_agent_uptime_seconds',
      help: 'Seconds since the agent started',
      registers: [metrics],
      collect() {
        this.set((Date.now() - agentStart) / 1000);
      },
    });
    const agentStart = this.context.startedAt;
    // Built-in components, in data-path order: storage, models, drift, fleet link.
    // (Each part of the agent adds its own line here; they start in this order, stop in reverse.)
    // --- components ---
    this.components.push(new EventLoopLag(this.context));
    this.security = new SecurityPolicy(this.context);
    this.components.push(this.security);
    this.telemetry = new TelemetryBuffer(this.context);
    this.components.push(this.telemetry);
    registerTelemetryRoutes(this.http, () => this.telemetry);
    // One signature verifier, built from this agent's security settings, for every package it reads.
    const verifier = this.security.packageVerifier;
    this.models = new ModelRuntime(this.context, { record: (stream, payload) => this.telemetry.record(stream, payload), verifier });
    // Rollouts first: they choose which installed version the runtime loads, and watch probation.
    const fieldAccuracy = new FieldAccuracy();
    this.rollouts = new ModelRollouts(this.context, { runtime: () => this.models, record: (stream, payload) => this.telemetry.record(stream, payload), field: fieldAccuracy });
    this.components.push(this.rollouts);
    // The inference APIs: /v1, and the Open Inference Protocol over REST (/v2) and gRPC; one
    // runtime, one admission, one token.
    const protocolMetrics = new ProtocolMetrics(metrics, (name) => this.models.has(name));
    registerModelRoutes(this.http, this.models, { maxElements: config.runtime.maxElements, metrics: protocolMetrics });
    const inference = new InferenceService(this.models, { maxElements: config.runtime.maxElements, notReady: () => this.notReady() });
    registerV2Routes(this.http, inference, { bodyLimitBytes: config.health.bodyLimitBytes, metrics: protocolMetrics });
    this.components.push(this.models);
    this.grpc = new GrpcInferenceServer(this.context, inference, protocolMetrics);
    this.drift = new DriftMonitor(this.context, {
      record: (stream, payload, opts) => this.telemetry.record(stream, payload, opts),
      referenceOf: (model, version) => this.models.driftReferenceOf(model, version),
    });
    this.models.onInference((e) => this.drift.observe(e.model, e.version, e.inputs, e.outputs ?? {}, { latencyMs: e.latencyMs, failed: !e.ok }));
    this.components.push(this.drift);
    // Field examples and feedback (docs/learning.md): answers remembered for labels, inputs kept per capture policy.
    const examples = new FieldExamples({
      policies: new Map(config.models.flatMap((m) => (m.capture ? [[m.name, m.capture] as const] : []))),
      record: (stream, payload) => this.telemetry.record(stream, payload),
      windowSeconds: config.feedback.windowSeconds,
      windowEntries: config.feedback.windowEntries,
      maxHeldBytes: config.feedback.maxHeldBytes,
      driftAlert: (model) => this.drift.latest()[model]?.verdict === 'alert',
      onLabel: (model, version, correct) => this.drift.feedback(model, version, correct),
      scores: fieldAccuracy,
    });
    this.models.onInference((e) => examples.observe(e));
    this.models.onShadowResult((c, id) => examples.shadowResult(c, id));
    registerFeedbackRoutes(this.http, this.models, () => examples);
    this.fleet = new FleetLink(this.context, {
      telemetry: () => this.telemetry,
      runtime: () => this.rollouts,
      inferences: (fn) => this.models.onInference(fn),
      feedback: (model, body) => giveFeedback(this.models, examples, model, body),
      checkCommand: (msg) => this.security.checkCommand(msg),
      verifier,
      agentRelease: () => this.update?.fleetHandler(),
    });
    this.components.push(this.fleet);
    // Served last: it answers once everything it reports on has started.
    this.components.push(this.grpc);
    // Self-update (update.root): the data format at start, then the health gate of a new release.
    if (config.update.root) {
      this.update = new SelfUpdate(this.context, {
        notReady: () => this.notReady().filter((r) => !r.startsWith('update:')),
        connected: () => !config.mqtt.url || (this.fleet.status() as { state?: string }).state === 'connected',
        exit: (code) => void this.stop().finally(() => process.exit(code)),
        committed: () => void this.fleet.modelSync?.reconcile(),
      });
      this.components.push(this.update);
    }
    // --- end components ---
    this.components.push(...(opts.components?.(this.context) ?? []));
  }

  get state(): string {
    return this.#state;
  }

  /** The URL of the health server once listening. */
  get url(): string {
    const addr = this.http.server.address() as AddressInfo | null;
    if (!addr) return '';
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}`;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`agent already ${this.#state}`);
    this.#state = 'starting';
    mkdirSync(this.config.dataDir, { recursive: true });
    accessSync(this.config.dataDir, constants.W_OK);
    for (const c of this.components) {
      await c.start();
      this.#started.push(c);
    }
    await this.http.listen({ host: this.config.health.host, port: this.config.health.port });
    this.#state = 'running';
    // Listening is not ready: models may still be warming up (or have failed to load), and
    // /readyz says 503 until they are. READY=1 goes to systemd now, since a model that cannot
    // load must not make systemd kill the agent that reports it; "edge-agent ready" is logged
    // only when /readyz agrees (agent/health/readiness-log.ts).
    this.log.info({ url: this.url, version: AGENT_VERSION }, 'edge-agent listening');
    this.systemd.ready(`serving ${this.url}`);
    this.#readiness.start(this.url);
  }

  /** Stops accepting work, flushes and closes everything in reverse order. Idempotent. */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop();
    return this.#stopPromise;
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping';
    this.#readiness.stop();
    this.systemd.stopping();
    try {
      await this.http.close();
    } catch (err) {
      this.log.warn({ err: describe(err) }, 'closing http server');
    }
    for (const c of this.#started.reverse()) {
      try {
        await c.stop();
      } catch (err) {
        this.log.error({ component: c.name, err: describe(err) }, 'component failed to stop cleanly');
      }
    }
    this.#state = 'stopped';
    this.log.info('edge-agent stopped');
  }

  notReady(): string[] {
    const reasons: string[] = [];
    if (this.#state !== 'running') reasons.push(`agent is ${this.#state}`);
    for (const c of this.components) {
      const why = c.notReady?.();
      if (why) reasons.push(`${c.name}: ${why}`);
    }
    return reasons;
  }

  warnings(): string[] {
    const out: string[] = [];
    for (const c of this.components) {
      const s = c.status?.() as { warning?: string } | undefined;
      if (s && typeof s === 'object' && s.warning) out.push(`${c.name}: ${s.warning}`);
    }
    return out;
  }

  status(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      version: AGENT_VERSION,
      deviceId: this.config.deviceId,
      state: this.#state,
      uptimeSeconds: Math.round((Date.now() - this.context.startedAt) / 1000),
      cpuFeatures: cpuFeatures(),
      kernelVariant: kernelVariant(),
      arch: process.arch,
      node: process.version,
    };
    for (const c of this.components) if (c.status) out[c.name] = c.status();
    return out;
  }
}

