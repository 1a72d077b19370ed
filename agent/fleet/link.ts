// FleetLink: the agent's side of the fleet protocol (docs/protocol.md). One MQTT client per
// device (client id = device id, persistent session), retained status with a Last Will,
// commands with replies, telemetry drained from the buffer, desired state and model sync.
// Being offline is normal: the agent keeps serving and buffering, and the link retries with
// capped, jittered backoff. An absent broker is a warning on /readyz, never a failure.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { AgentContext, Component } from '../component.js';
import { describe } from '../errors.js';
import { cpuFeatures, kernelVariant } from '../hardware.js';
import { AGENT_VERSION } from '../version.js';
import { prom } from '../metrics.js';
import { Backoff, BROKER_BUSY, backlogDelay } from './backoff.js';
import { CommandRouter, type CommandReply } from './commands.js';
import { parseDesired } from './desired.js';
import { TelemetryDrain, type LeaseSource } from './drain.js';
import { parseAck } from '../../protocol/telemetry-ack.js';
import { FleetErrors } from '../errors.js';
import { decodeFrame, type Frame } from '../../protocol/frame.js';
import type { ArtifactResponseHeader } from './artifact-download.js';
import { ModelSync, activeVersions, type ModelActivator, type UnpackArtifact, type VerifyPackage } from './model-sync.js';
import { clientOptions, safeUrl } from './mqtt-options.js';
import { addressedTo, PROTOCOL, parseTopic, replyTopicAllowed, topics } from '../../protocol/topics.js';
import { SampleCollector, type InferenceLike } from './samples.js';
import { extractArchive } from '../models/archive.js';
import { loadPackage } from '../models/package.js';

let mqttConnect: typeof import('mqtt').connect | undefined;

export interface FleetLinkDeps {
  /** The telemetry buffer (the queue of record), when the agent has one. */
  telemetry?: () => (LeaseSource & { stats?(): unknown; record?(stream: string, payload: unknown): number }) | undefined;
  /** Subscribes to every inference (ModelRuntime.onInference), for samples.collect. */
  inferences?: (fn: (e: InferenceLike) => void) => void;
  runtime?: () => ModelActivator | undefined;
  unpack?: UnpackArtifact;
  verify?: VerifyPackage;
  /** Throws to refuse a command before it runs (SecurityPolicy.checkCommand). */
  checkCommand?: (msg: Record<string, unknown>) => void;
  /** Extra status fields for the retained status message (for example the drift summary). */
  statusExtra?: () => Record<string, unknown>;
}

export type BrokerState = 'disabled' | 'connecting' | 'connected' | 'reconnecting' | 'stopped';

const TELEMETRY_CONTENT_TYPE = 'application/x-ndjson+gzip';
/** Report states in which the version serves (the rollout slots add probation and committed). */
const SERVING = new Set(['active', 'probation', 'committed']);

export class FleetLink implements Component {
  readonly name = 'fleet';
  readonly commands: CommandRouter;
  #client: MqttClient | undefined;
  #protocol: 4 | 5;
  #state: BrokerState = 'disabled';
  #backoff: Backoff;
  #stableTimer?: NodeJS.Timeout;
  #resumeTimer?: NodeJS.Timeout;
  #lastError: string | undefined;
  #connectedAt: number | undefined;
  #connects = 0;
  #fellBack = false;
  #drain: TelemetryDrain | undefined;
  #sync: ModelSync | undefined;
  #pending = new Map<string, { resolve: (f: Frame<ArtifactResponseHeader>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #lastReport: Buffer | undefined;
  #stopping = false;
  #activeReported = '';
  #mConnected: prom.Gauge | undefined;

  constructor(private readonly ctx: AgentContext, private readonly deps: FleetLinkDeps = {}) {
    const m = ctx.config.mqtt;
    this.#protocol = m.protocolVersion;
    this.#backoff = new Backoff(m.reconnectMinMs, m.reconnectMaxMs);
    this.commands = new CommandRouter(m.maxCommandBytes, deps.checkCommand);
  }

  get state(): BrokerState {
    return this.#state;
  }

  get protocolVersion(): 4 | 5 {
    return this.#protocol;
  }

  get modelSync(): ModelSync | undefined {
    return this.#sync;
  }

  async start(): Promise<void> {
    const { config, log } = this.ctx;
    this.#mConnected = new prom.Gauge({ name: 'edge_fleet_connected', help: '1 while connected to the fleet broker', registers: [this.ctx.metrics] });
    this.#mConnected.set(0);
    this.#registerCommands();
    const buffer = this.deps.telemetry?.();
    if (buffer) {
      this.#drain = new TelemetryDrain(buffer, (stream, payload) => this.#publishBatch(stream, payload), {
        inflight: config.mqtt.inflight,
        recordsPerSecond: config.mqtt.drainRecordsPerSecond,
        batchMaxBytes: config.mqtt.batchMaxBytes,
        ack: config.mqtt.telemetryAck,
        ackTimeoutMs: config.mqtt.ackTimeoutMs,
        ackRetryMaxMs: config.mqtt.ackRetryMaxMs,
      }, log.child({ component: 'fleet-drain' }));
    }
    this.#sync = new ModelSync({
      dataDir: config.dataDir,
      groups: config.mqtt.groups,
      downloadWindow: config.mqtt.downloadWindow,
      requestTimeoutMs: config.mqtt.requestTimeoutMs,
      log: log.child({ component: 'model-sync' }),
      request: (body, timeoutMs) => this.artifactRequest(body, timeoutMs),
      report: (doc) => this.#publishReport(doc),
      runtime: () => this.deps.runtime?.(),
      // A downloaded .edgepkg is unpacked and fully loaded (schema, hashes, signature, graph)
      // before it is installed; tests and tools may swap these.
      unpack: this.deps.unpack ?? (async (file, dest) => { await extractArchive(file, dest); }),
      verify: this.deps.verify ?? ((dir) => loadPackage(dir)),
    });
    if (!config.mqtt.url) {
      log.warn('no mqtt.url configured: running offline, telemetry stays in the buffer');
      return;
    }
    // Loaded only when there is a broker to connect to (~90 ms of start-up CPU otherwise).
    mqttConnect ??= (await import('mqtt')).default.connect;
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#stableTimer);
    clearTimeout(this.#resumeTimer);
    this.#drain?.pause();
    this.#sync?.stop();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(FleetErrors.OFFLINE());
    }
    this.#pending.clear();
    const client = this.#client;
    if (!client) return;
    this.#state = 'stopped';
    if (client.connected) {
      // A clean shutdown says so itself; the Last Will is only for the unclean ones.
      await this.#publish(topics.status(this.ctx.config.deviceId), this.#statusPayload('offline'), { qos: 1, retain: true })
        .catch((err) => this.ctx.log.warn({ err: describe(err) }, 'could not publish offline status'));
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { client.end(true); resolve(); }, 2000);
      client.end(false, {}, () => { clearTimeout(t); resolve(); });
    });
    this.#mConnected?.set(0);
  }

  notReady(): undefined {
    return undefined; // an unreachable broker is normal for an edge device: see status().warning
  }

  status(): Record<string, unknown> {
    const url = this.ctx.config.mqtt.url;
    const out: Record<string, unknown> = {
      broker: url ? safeUrl(url) : null,
      state: this.#state,
      protocolVersion: this.#protocol,
      connectedSince: this.#connectedAt ? new Date(this.#connectedAt).toISOString() : null,
      connects: this.#connects,
      reconnectAttempt: this.#backoff.attempt,
      lastError: this.#lastError ?? null,
      commands: this.commands.stats(),
      telemetry: this.#drain?.stats() ?? null,
      models: this.#sync?.reports() ?? [],
      desired: this.#sync?.desired().effective ?? [],
    };
    if (!url) out.warning = 'no broker configured (mqtt.url): running offline';
    else if (this.#state !== 'connected' && this.#state !== 'stopped') out.warning = `broker ${safeUrl(url)} unreachable (${this.#lastError ?? this.#state}); buffering telemetry`;
    return out;
  }

  /** telemetry.flush and tests: drain now, resolve when the buffer is empty. */
  async flushTelemetry(timeoutMs = 30_000): Promise<{ recordsAcked: number }> {
    if (!this.#drain) throw FleetErrors.UNAVAILABLE('this agent has no telemetry buffer');
    if (this.#state !== 'connected') throw FleetErrors.OFFLINE();
    return this.#drain.flush(timeoutMs);
  }

  /** Tells the drain there is something new (after TelemetryBuffer.record). */
  kickTelemetry(): void {
    this.#drain?.kick();
  }

  #connect(): void {
    const { config, log } = this.ctx;
    const deviceId = config.deviceId;
    const opts = clientOptions(config, this.#protocol, this.#statusPayload('offline', 'connection lost'), topics.status(deviceId));
    this.#state = 'connecting';
    const client = mqttConnect!(config.mqtt.url!, opts);
    this.#client = client;
    // Runs before mqtt.js schedules its reconnect, so each attempt gets a fresh jittered delay.
    client.prependListener('close', () => {
      clearTimeout(this.#stableTimer);
      client.options.reconnectPeriod = this.#backoff.next();
    });
    client.on('connect', (connack) => {
      if (this.#client !== client) return;
      // The backoff starts again from the minimum only once this connection has lasted.
      clearTimeout(this.#stableTimer);
      this.#stableTimer = setTimeout(() => this.#backoff.reset(), config.mqtt.stableAfterMs);
      this.#stableTimer.unref();
      this.#state = 'connected';
      this.#connects++;
      this.#connectedAt = Date.now();
      this.#lastError = undefined;
      this.#mConnected?.set(1);
      log.info({ broker: safeUrl(config.mqtt.url!), protocolVersion: this.#protocol, sessionPresent: connack.sessionPresent }, 'connected to the fleet broker');
      this.#limitMessages(connack.properties?.maximumPacketSize);
      this.#onConnected(client);
    });
    client.on('close', () => {
      if (this.#client !== client) return;
      if (this.#state === 'connected') log.warn({ broker: safeUrl(config.mqtt.url!) }, 'fleet broker connection lost; buffering');
      else if (!this.#stopping) {
        // An attempt that failed (refused, or no CONNACK within connectTimeoutMs): said at
        // attempts 1, 2, 4, 8..., so a long outage stays visible without flooding the log.
        const n = this.#backoff.attempt;
        const level = (n & (n - 1)) === 0 ? 'warn' : 'debug';
        log[level]({ broker: safeUrl(config.mqtt.url!), attempt: n, err: this.#lastError ?? 'closed before CONNACK', retryInMs: client.options.reconnectPeriod, capMs: this.#backoff.capMs }, 'fleet broker not reachable; retrying');
      }
      if (!this.#stopping) this.#state = 'reconnecting';
      this.#connectedAt = undefined;
      this.#mConnected?.set(0);
      this.#drain?.pause();
      this.#sync?.setOnline(false);
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      if (this.#client !== client) return;
      this.#lastError = err.message;
      // 1 (3.1.1 CONNACK) and 0x84 (MQTT 5 "unsupported protocol version"): speak 3.1.1 instead.
      if (this.#protocol === 5 && (err.code === 1 || err.code === 132)) {
        log.info({ err: err.message }, 'broker refused MQTT 5; falling back to MQTT 3.1.1');
        this.#protocol = 4;
        this.#fellBack = true;
        this.#client = undefined;
        client.removeAllListeners();
        client.on('error', () => undefined);
        client.end(true);
        this.#connect();
        return;
      }
      const busy = typeof err.code === 'number' ? BROKER_BUSY.get(err.code) : undefined;
      if (busy) {
        // The broker is overloaded: every later attempt waits up to the longest delay.
        this.#backoff.toCap();
        log.warn({ err: err.message, reason: busy, capMs: this.#backoff.capMs }, 'fleet broker is overloaded; backing off to mqtt.reconnectMaxMs');
        return;
      }
      log.debug({ err: err.message }, 'fleet broker error');
    });
    client.on('message', (topic, payload, packet) => {
      try {
        this.#onMessage(topic, payload, packet);
      } catch (err) {
        log.error({ topic, err: describe(err) }, 'fleet message handler failed');
      }
    });
  }

  #onConnected(client: MqttClient): void {
    const { config } = this.ctx;
    const d = config.deviceId;
    void this.#publish(topics.status(d), this.#statusPayload('online'), { qos: 1, retain: true }).catch(() => undefined);
    const subs: Record<string, { qos: 0 | 1 }> = {
      [topics.cmd(d)]: { qos: 1 },
      [topics.desired(d)]: { qos: 1 },
      [topics.artifactRes(d)]: { qos: 1 },
    };
    for (const g of config.mqtt.groups) subs[topics.groupDesired(g)] = { qos: 1 };
    // Subscribed before the drain resumes: the broker handles the SUBSCRIBE before the first
    // batch, so no ack can come before the subscription exists.
    if (this.#drain?.ackMode === 'controller') subs[topics.telemetryAcks(d)] = { qos: 1 };
    client.subscribe(subs, (err) => {
      if (err) {
        this.#lastError = `subscribe failed: ${err.message}`;
        this.ctx.log.error({ err: err.message }, 'fleet subscribe failed');
      }
    });
    this.#resumeDrain(client);
    this.#sync?.setOnline(true);
    if (this.#lastReport) void this.#publish(topics.reported(d), this.#lastReport, { qos: 1, retain: true }).catch(() => undefined);
  }

  /** The telemetry backlog goes out after a random share of mqtt.backlogSpreadMs (backoff.ts). */
  #resumeDrain(client: MqttClient): void {
    if (!this.#drain) return;
    const { backlogSpreadMs, reconnectMaxMs } = this.ctx.config.mqtt;
    const delay = backlogDelay(backlogSpreadMs, reconnectMaxMs);
    clearTimeout(this.#resumeTimer);
    if (delay === 0) {
      this.#drain.resume();
      return;
    }
    this.#resumeTimer = setTimeout(() => {
      if (this.#client === client && client.connected && !this.#stopping) this.#drain?.resume();
    }, delay);
    this.#resumeTimer.unref();
  }

  #onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (!addressedTo(t, this.ctx.config.deviceId, this.ctx.config.mqtt.groups)) {
      this.ctx.log.warn({ topic }, 'fleet message for another device or group dropped');
      return;
    }
    switch (t.kind) {
      case 'cmd':
        void this.#onCommand(payload, packet);
        return;
      case 'desired':
      case 'groupDesired': {
        const doc = parseDesired(payload);
        if (doc && 'problems' in doc) {
          const err = FleetErrors.BAD_DESIRED(topic, doc.problems);
          this.#lastError = err.message;
          this.ctx.log.warn({ code: err.code }, err.message);
          return;
        }
        this.#sync?.setDesired(t.kind === 'desired' ? { device: true } : { group: t.group! }, doc);
        return;
      }
      case 'artifactRes':
        this.#onArtifactResponse(payload, packet);
        return;
      case 'telemetryAck': {
        if (!this.#drain || t.device !== this.ctx.config.deviceId) return;
        const ack = parseAck(payload, t.stream!);
        if ('problem' in ack) this.#drain.refuseAck(topic, ack.problem);
        else this.#drain.onAck(ack);
        return;
      }
    }
  }

  async #onCommand(payload: Buffer, packet: IPublishPacket): Promise<void> {
    const reply: CommandReply = await this.commands.handle(payload);
    const props = packet.properties;
    const opts: IClientPublishOptions = { qos: 1 };
    let topic = topics.cmdRes(this.ctx.config.deviceId);
    if (props?.responseTopic && replyTopicAllowed(props.responseTopic, this.ctx.config.deviceId)) {
      topic = props.responseTopic;
      if (props.correlationData) opts.properties = { correlationData: props.correlationData, contentType: 'application/json' };
    } else if (props?.responseTopic) {
      this.ctx.log.warn({ responseTopic: props.responseTopic.slice(0, 200), id: reply.id, allowed: `${topics.cmdRes(this.ctx.config.deviceId)}/<requester>` },
        'command response topic outside this device\'s reply prefix; replying on cmd/res instead');
    }
    if (!this.#client?.connected) return; // the reply stays cached: a retry with the same id gets it
    await this.#publish(topic, Buffer.from(JSON.stringify(reply)), opts).catch((err) =>
      this.ctx.log.warn({ err: describe(err), id: reply.id }, 'command reply not delivered'));
  }

  #onArtifactResponse(payload: Buffer, packet: IPublishPacket): void {
    let frame: Frame<ArtifactResponseHeader>;
    try {
      frame = decodeFrame<ArtifactResponseHeader>(payload);
    } catch (err) {
      this.ctx.log.warn({ err: describe(err) }, 'ignored a malformed artifact response');
      return;
    }
    const id = typeof frame.header.id === 'string' ? frame.header.id : packet.properties?.correlationData?.toString('utf8');
    const p = id ? this.#pending.get(id) : undefined;
    if (!p) return; // late answer to a request that timed out
    this.#pending.delete(id!);
    clearTimeout(p.timer);
    p.resolve(frame);
  }

  /** One artifact request/response over the broker (model sync uses it; so do tools and the benchmark). */
  artifactRequest(body: { op: string; sha256: string; index?: number }, timeoutMs: number): Promise<Frame<ArtifactResponseHeader>> {
    const client = this.#client;
    if (!client?.connected) return Promise.reject(FleetErrors.OFFLINE());
    const id = randomUUID();
    const d = this.ctx.config.deviceId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(FleetErrors.TIMEOUT(`artifact ${body.op}${body.index !== undefined ? ` ${body.index}` : ''}`, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const opts: IClientPublishOptions = { qos: 1 };
      if (this.#protocol === 5) opts.properties = { responseTopic: topics.artifactRes(d), correlationData: Buffer.from(id) };
      client.publish(topics.artifactReq(d), JSON.stringify({ id, ...body }), opts, (err) => {
        if (err && this.#pending.delete(id)) {
          clearTimeout(timer);
          reject(FleetErrors.OFFLINE());
        }
      });
    });
  }

  /**
   * A broker that advertises a maximum packet size (MQTT 5 CONNACK) closes the connection on
   * a larger PUBLISH: every re-send of that batch would close it again. The telemetry
   * message limit is then the smaller of mqtt.batchMaxBytes and what the broker takes.
   */
  #limitMessages(maximumPacketSize: number | undefined): void {
    if (!this.#drain) return;
    const batchMaxBytes = this.ctx.config.mqtt.batchMaxBytes;
    if (!maximumPacketSize) {
      this.#drain.messageLimit = batchMaxBytes;
      return;
    }
    // PUBLISH framing: fixed header (5), topic (2 + its bytes, streams up to 32 characters),
    // packet id (2), properties (5 + the content type).
    const topic = Buffer.byteLength(topics.telemetry(this.ctx.config.deviceId, 'x'.repeat(32)));
    const framing = 5 + 2 + topic + 2 + 5 + 3 + TELEMETRY_CONTENT_TYPE.length;
    const limit = Math.max(1024, Math.min(batchMaxBytes, maximumPacketSize - framing));
    if (limit < batchMaxBytes && this.#drain.messageLimit !== limit) {
      this.ctx.log.warn({ maximumPacketSize, batchMaxBytes, messageLimit: limit }, 'the broker takes smaller packets than mqtt.batchMaxBytes: telemetry messages are limited to what it takes');
    }
    this.#drain.messageLimit = limit;
  }

  #publishBatch(stream: string, payload: Buffer): Promise<void> {
    const opts: IClientPublishOptions = { qos: 1 };
    if (this.#protocol === 5) opts.properties = { contentType: TELEMETRY_CONTENT_TYPE };
    return this.#publish(topics.telemetry(this.ctx.config.deviceId, stream), payload, opts);
  }

  #publishReport(doc: { models: { name: string; version: string; state: string }[] }): void {
    // An activation changes what the status message lists: republish it then.
    const active = doc.models.filter((m) => SERVING.has(m.state)).map((m) => `${m.name}@${m.version}`).sort().join(' ');
    if (active !== this.#activeReported) {
      this.#activeReported = active;
      this.#republishStatus();
    }
    const buf = Buffer.from(JSON.stringify({ ...doc, deviceId: this.ctx.config.deviceId, ts: new Date().toISOString() }));
    this.#lastReport = buf;
    if (this.#client?.connected) {
      void this.#publish(topics.reported(this.ctx.config.deviceId), buf, { qos: 1, retain: true }).catch(() => undefined);
    }
  }

  /** Publishes only while connected: nothing is left for mqtt.js to queue offline. */
  #publish(topic: string, payload: Buffer | string, opts: IClientPublishOptions): Promise<void> {
    const client = this.#client;
    if (!client?.connected) return Promise.reject(FleetErrors.OFFLINE());
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
    });
  }

  #statusPayload(state: 'online' | 'offline', reason?: string): Buffer {
    const { config, startedAt } = this.ctx;
    const rt = this.deps.runtime?.();
    const models = [...activeVersions(rt)].map(([name, version]) => ({ name, version }));
    return Buffer.from(JSON.stringify({
      v: 1,
      protocol: PROTOCOL,
      deviceId: config.deviceId,
      state,
      ...(reason ? { reason } : {}),
      agentVersion: AGENT_VERSION,
      models,
      cpuFeatures: cpuFeatures(),
      kernelVariant: kernelVariant(),
      arch: process.arch,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      hostname: os.hostname(),
      groups: config.mqtt.groups,
      mqtt: { protocolVersion: this.#protocol, fellBack: this.#fellBack },
      ...(this.deps.statusExtra?.() ?? {}),
      ts: new Date().toISOString(),
    }));
  }

  #registerCommands(): void {
    const r = this.commands;
    r.register('ping', { description: 'liveness: answers {pong:true, ts}', run: () => ({ pong: true, ts: new Date().toISOString() }) });
    r.register('status', { description: 'the same document as GET /v1/status', run: () => JSON.parse(this.#statusPayload('online').toString()) as unknown });
    r.register('models.list', {
      description: 'active and installed versions per model, and the sync state',
      run: () => {
        const active = activeVersions(this.deps.runtime?.());
        const names = new Set([...active.keys(), ...(this.#sync?.reports().map((m) => m.name) ?? [])]);
        return [...names].sort().map((name) => ({
          name,
          active: active.get(name) ?? null,
          installed: this.#sync?.installed(name) ?? [],
          sync: this.#sync?.reports().find((m) => m.name === name) ?? null,
        }));
      },
    });
    r.register<{ name: string; version: string }>('models.activate', {
      description: 'activate an installed version',
      args: objectOf({ name: NAME_ARG, version: NAME_ARG }, ['name', 'version']),
      run: async (a) => {
        const res = await this.#sync!.activateInstalled(a.name, a.version);
        this.#republishStatus();
        return res;
      },
    });
    r.register<{ name: string; force?: boolean }>('models.rollback', {
      description: 'go back to the previously active version (force: also to a version that failed probation here)',
      args: objectOf({ name: NAME_ARG, force: { type: 'boolean' } }, ['name']),
      run: async (a) => {
        const rt = this.deps.runtime?.();
        if (!rt) throw FleetErrors.UNAVAILABLE('no model runtime in this agent');
        const res = await rt.rollback(a.name, { force: a.force });
        this.#republishStatus();
        return res ?? { name: a.name, active: activeVersions(rt).get(a.name) ?? null };
      },
    });
    r.register<{ timeoutMs?: number }>('telemetry.flush', {
      description: 'publish everything buffered now; answers when the buffer is drained',
      args: objectOf({ timeoutMs: TIMEOUT_ARG }, []),
      run: async (a) => {
        const res = await this.flushTelemetry(a.timeoutMs ?? 30_000);
        return { ...res, buffer: this.deps.telemetry?.()?.stats?.() ?? null };
      },
    });
    const buffer = this.deps.telemetry?.();
    const samples = buffer?.record && this.deps.inferences ? new SampleCollector((stream, payload) => buffer.record!(stream, payload)) : undefined;
    if (samples) this.deps.inferences!((e) => samples.observe(e));
    r.register<{ model: string; count?: number; timeoutMs?: number }>('samples.collect', {
      description: 'copy the next COUNT inferences of MODEL (inputs and outputs) into the telemetry stream "samples"',
      args: objectOf({ model: NAME_ARG, count: { type: 'integer', minimum: 1, maximum: 100 }, timeoutMs: TIMEOUT_ARG }, ['model']),
      run: async (a) => {
        if (!samples) throw FleetErrors.UNAVAILABLE('this agent has no telemetry buffer or model runtime to collect samples from');
        if (!activeVersions(this.deps.runtime?.()).has(a.model)) throw FleetErrors.UNAVAILABLE(`no active model "${a.model}" on this device`);
        return samples.collect(a.model, a.count ?? 10, a.timeoutMs ?? 30_000);
      },
    });
  }

  #republishStatus(): void {
    if (!this.#client?.connected) return;
    void this.#publish(topics.status(this.ctx.config.deviceId), this.#statusPayload('online'), { qos: 1, retain: true }).catch(() => undefined);
  }
}

// Command args as plain JSON schema (TypeBox's import is start-up time; see desired.ts).
const NAME_ARG = { type: 'string', minLength: 1 } as const;
const TIMEOUT_ARG = { type: 'integer', minimum: 100, maximum: 300_000 } as const;
function objectOf(properties: Record<string, object>, required: string[]): object {
  return { type: 'object', properties, required };
}

