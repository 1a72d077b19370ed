// FleetLink: the agent's side of the fleet protocol (docs/protocol.md). One MQTT client per
// device (client id = device id, persistent session), retained status with a Last Will,
// commands with replies, telemetry drained from the buffer, desired state and model sync.
// Being offline is normal: the agent keeps serving and buffering, and the link retries with
// capped, jittered backoff. An absent broker is a warning on /readyz, never a failure.
//
// The parts: broker-session.ts (connection, reconnects, MQTT 5 fallback), device-status.ts
// (status and report messages), device-commands.ts (what each command does),
// telemetry-uplink.ts (buffer → drain → broker), artifact-requests.ts (model downloads);
// this class routes what arrives and says what happens on connect and on loss.
import type { IClientPublishOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import type { AgentContext, Component } from '../component.js';
import { describe, FleetErrors } from '../errors.js';
import type { Frame } from '../../protocol/frame.js';
import { addressedTo, parseTopic, replyTopicAllowed, topics } from '../../protocol/topics.js';
import type { ArtifactResponseHeader } from '../models/download.js';
import { packageSteps } from '../models/install.js';
import { REFUSE_ALL, type SignatureVerifier } from '../models/verify.js';
import { ArtifactRequests, type ArtifactRequestBody } from './artifact-requests.js';
import { BrokerSession, type SessionEvents } from './broker-session.js';
import { DeviceIdentity } from './identity.js';
import { CommandRouter, type CommandReply } from './commands.js';
import { parseDesired } from './desired.js';
import { registerDeviceCommands } from './device-commands.js';
import { DeviceStatus } from './device-status.js';
import { ModelSync, type AgentReleaseHandler, type ModelActivator, type UnpackArtifact, type VerifyPackage } from './model-sync.js';
import { safeUrl } from './mqtt-options.js';
import type { InferenceLike } from './samples.js';
import { TelemetryUplink, type TelemetrySource } from './telemetry-uplink.js';

import type { BrokerState } from './broker-session.js';
export type { BrokerState };

export interface FleetLinkDeps {
  /** The telemetry buffer (the queue of record), when the agent has one. Its commits kick the drain. */
  telemetry?: () => TelemetrySource | undefined;
  /** Subscribes to every inference (ModelRuntime.onInference), for samples.collect. */
  inferences?: (fn: (e: InferenceLike) => void) => void;
  runtime?: () => ModelActivator | undefined;
  /** Checks each downloaded package's signature (SecurityPolicy.packageVerifier); without one every package is refused. */
  verifier?: SignatureVerifier;
  unpack?: UnpackArtifact;
  /** Self-update: agent releases in the desired state (agent/update/component.ts). */
  agentRelease?: () => AgentReleaseHandler | undefined;
  verify?: VerifyPackage;
  /** Throws to refuse a command before it runs (SecurityPolicy.checkCommand). */
  checkCommand?: (msg: Record<string, unknown>) => void;
  /** The feedback command: labels an answer (FieldExamples.feedback behind a model check). */
  feedback?: (model: string, body: { id: string; label: unknown }) => unknown;
  /** Extra status fields for the retained status message (for example the drift summary). */
  statusExtra?: () => Record<string, unknown>;
}

export class FleetLink implements Component {
  readonly name = 'fleet';
  readonly commands: CommandRouter;
  readonly #ctx: AgentContext;
  readonly #deps: FleetLinkDeps;
  readonly #session: BrokerSession;
  readonly #status: DeviceStatus;
  readonly #artifacts: ArtifactRequests;
  #uplink: TelemetryUplink | undefined;
  #sync: ModelSync | undefined;
  /** The device's provisioned certificate (provisioning in the config), else undefined. */
  readonly #identity: DeviceIdentity | undefined;

  constructor(ctx: AgentContext, deps: FleetLinkDeps = {}) {
    this.#ctx = ctx;
    this.#deps = deps;
    this.commands = new CommandRouter(ctx.config.mqtt.maxCommandBytes, deps.checkCommand);
    const events: SessionEvents = {
      connected: (client, connack) => this.#onConnected(client, connack),
      lost: () => this.#onLost(),
      message: (topic, payload, packet) => this.#onMessage(topic, payload, packet),
    };
    this.#session = new BrokerSession(ctx.config, ctx.log, events, () => this.#status.payload('offline', 'connection lost'));
    this.#status = new DeviceStatus(ctx, this.#session, () => deps.runtime?.(), deps.statusExtra);
    this.#artifacts = new ArtifactRequests(this.#session, ctx.config.deviceId, ctx.log);
    if (ctx.config.provisioning) this.#identity = new DeviceIdentity(ctx.config, ctx.log.child({ component: 'identity' }), this.#session);
  }

  get state(): BrokerState {
    return this.#session.state;
  }

  get protocolVersion(): 4 | 5 {
    return this.#session.protocolVersion;
  }

  get modelSync(): ModelSync | undefined {
    return this.#sync;
  }

  async start(): Promise<void> {
    const { config, log } = this.#ctx;
    this.#session.registerMetrics(this.#ctx.metrics);
    const buffer = this.#deps.telemetry?.();
    if (buffer) {
      this.#uplink = new TelemetryUplink(buffer, this.#session, config, log.child({ component: 'fleet-drain' }));
      this.#uplink.start();
    }
    this.#sync = new ModelSync({
      dataDir: config.dataDir,
      groups: config.mqtt.groups,
      downloadWindow: config.mqtt.downloadWindow,
      requestTimeoutMs: config.mqtt.requestTimeoutMs,
      log: log.child({ component: 'model-sync' }),
      request: (body, timeoutMs) => this.artifactRequest(body, timeoutMs),
      report: (doc) => this.#status.report(doc),
      runtime: () => this.#deps.runtime?.(),
      // A downloaded .edgepkg is unpacked and fully loaded (schema, hashes, signature, graph)
      // before it is installed; tests and tools may swap these.
      unpack: this.#deps.unpack ?? packageSteps(this.#deps.verifier ?? REFUSE_ALL).unpack,
      verify: this.#deps.verify ?? packageSteps(this.#deps.verifier ?? REFUSE_ALL).verify,
      agentRelease: this.#deps.agentRelease?.(),
    });
    registerDeviceCommands(this.commands, {
      status: this.#status,
      sync: this.#sync,
      runtime: () => this.#deps.runtime?.(),
      flush: (timeoutMs) => this.flushTelemetry(timeoutMs),
      telemetry: buffer,
      inferences: this.#deps.inferences,
      feedback: this.#deps.feedback,
    });
    if (!config.mqtt.url) {
      log.warn('no mqtt.url configured: running offline, telemetry stays in the buffer');
      return;
    }
    const identity = this.#identity;
    if (identity && !identity.load()) {
      // First start: enroll in the background (the agent serves locally meanwhile), then connect.
      void identity.enrollByClaim().then(async (ok) => {
        if (!ok) return;
        await this.#session.connect();
        identity.scheduleRenewal();
      }).catch((err) => log.error({ err: describe(err) }, 'enrollment stopped'));
      return;
    }
    await this.#session.connect();
    identity?.scheduleRenewal();
  }

  async stop(): Promise<void> {
    this.#identity?.stop();
    this.#session.halt();
    this.#uplink?.stop();
    this.#sync?.stop();
    this.#artifacts.rejectAll();
    await this.#session.end(() => this.#status.payload('offline'));
  }

  notReady(): undefined {
    return undefined; // an unreachable broker is normal for an edge device: see status().warning
  }

  status(): Record<string, unknown> {
    const url = this.#ctx.config.mqtt.url;
    const session = this.#session;
    const out: Record<string, unknown> = {
      broker: url ? safeUrl(url) : null,
      ...session.info(),
      commands: this.commands.stats(),
      telemetry: this.#uplink?.drain.stats() ?? null,
      models: this.#sync?.reports() ?? [],
      desired: this.#sync?.desired().effective ?? [],
    };
    if (this.#identity) out.identity = this.#identity.info();
    if (!url) out.warning = 'no broker configured (mqtt.url): running offline';
    else if (session.state !== 'connected' && session.state !== 'stopped') out.warning = `broker ${safeUrl(url)} unreachable (${session.lastError ?? session.state}); buffering telemetry`;
    return out;
  }

  /** telemetry.flush and tests: drain now, resolve when the buffer is empty. */
  async flushTelemetry(timeoutMs = 30_000): Promise<{ recordsAcked: number }> {
    if (!this.#uplink) throw FleetErrors.UNAVAILABLE('this agent has no telemetry buffer');
    if (this.#session.state !== 'connected') throw FleetErrors.OFFLINE();
    return this.#uplink.drain.flush(timeoutMs);
  }

  /** Tells the drain there is something new now (each commit of the buffer does this too). */
  kickTelemetry(): void {
    this.#uplink?.drain.kick();
  }

  /** One artifact request/response over the broker (model sync uses it; so do tools and the benchmark). */
  artifactRequest(body: ArtifactRequestBody, timeoutMs: number): Promise<Frame<ArtifactResponseHeader>> {
    return this.#artifacts.request(body, timeoutMs);
  }

  /** Connected: status, subscriptions, the telemetry backlog, model sync and the last report. */
  #onConnected(client: MqttClient, connack: IConnackPacket): void {
    this.#uplink?.limitMessages(connack.properties?.maximumPacketSize);
    const d = this.#ctx.config.deviceId;
    this.#status.republish();
    const subs: Record<string, { qos: 0 | 1 }> = {
      [topics.cmd(d)]: { qos: 1 },
      [topics.desired(d)]: { qos: 1 },
      [topics.artifactRes(d)]: { qos: 1 },
    };
    for (const g of this.#ctx.config.mqtt.groups) subs[topics.groupDesired(g)] = { qos: 1 };
    if (this.#identity) subs[topics.certRes(d)] = { qos: 1 };
    // Subscribed before the drain resumes: the broker handles the SUBSCRIBE before the first
    // batch, so no ack can come before the subscription exists.
    if (this.#uplink?.drain.ackMode === 'controller') subs[topics.telemetryAcks(d)] = { qos: 1 };
    client.subscribe(subs, (err) => {
      if (err) {
        this.#session.lastError = `subscribe failed: ${err.message}`;
        this.#ctx.log.error({ err: err.message }, 'fleet subscribe failed');
      }
    });
    this.#uplink?.resumeAfterSpread(client);
    this.#sync?.setOnline(true);
    this.#status.republishReport();
  }

  /** Connection lost: nothing more is published until the next connect. */
  #onLost(): void {
    this.#uplink?.drain.pause();
    this.#sync?.setOnline(false);
  }

  /** One message on a subscribed topic. */
  #onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (!addressedTo(t, this.#ctx.config.deviceId, this.#ctx.config.mqtt.groups)) {
      this.#ctx.log.warn({ topic }, 'fleet message for another device or group dropped');
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
          this.#session.lastError = err.message;
          this.#ctx.log.warn({ code: err.code }, err.message);
          return;
        }
        this.#sync?.setDesired(t.kind === 'desired' ? { device: true } : { group: t.group! }, doc);
        return;
      }
      case 'artifactRes':
        this.#artifacts.response(payload, packet);
        return;
      case 'certRes':
        this.#identity?.onRenewalAnswer(payload);
        return;
      case 'telemetryAck':
        if (!this.#uplink || t.device !== this.#ctx.config.deviceId) return;
        this.#uplink.ack(topic, payload, t.stream!);
        return;
    }
  }

  async #onCommand(payload: Buffer, packet: IPublishPacket): Promise<void> {
    const reply: CommandReply = await this.commands.handle(payload);
    const d = this.#ctx.config.deviceId;
    const props = packet.properties;
    const opts: IClientPublishOptions = { qos: 1 };
    let topic = topics.cmdRes(d);
    if (props?.responseTopic && replyTopicAllowed(props.responseTopic, d)) {
      topic = props.responseTopic;
      if (props.correlationData) opts.properties = { correlationData: props.correlationData, contentType: 'application/json' };
    } else if (props?.responseTopic) {
      this.#ctx.log.warn({ responseTopic: props.responseTopic.slice(0, 200), id: reply.id, allowed: `${topics.cmdRes(d)}/<requester>` },
        'command response topic outside this device\'s reply prefix; replying on cmd/res instead');
    }
    if (!this.#session.connected) return; // the reply stays cached: a retry with the same id gets it
    await this.#session.publish(topic, Buffer.from(JSON.stringify(reply)), opts).catch((err) =>
      this.#ctx.log.warn({ err: describe(err), id: reply.id }, 'command reply not delivered'));
  }
}
