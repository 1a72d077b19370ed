// The MQTT session with the fleet broker: one client per device (client id = device id,
// persistent session) with a Last Will, reconnects with capped, jittered backoff, a fallback
// to MQTT 3.1.1 for a broker that refuses 5, and the connection state /v1/status shows.
// What happens on connect, on loss and per message is the link's (SessionEvents).
import type { IClientPublishOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { FleetErrors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { prom } from '../metrics.js';
import { topics } from '../../protocol/topics.js';
import { Backoff, BROKER_BUSY } from './backoff.js';
import { clientOptions, safeUrl } from './mqtt-options.js';

let mqttConnect: typeof import('mqtt').connect | undefined;

export type BrokerState = 'disabled' | 'connecting' | 'connected' | 'reconnecting' | 'stopped';

/** What the link does when the session changes (FleetLink implements it). */
export interface SessionEvents {
  connected(client: MqttClient, connack: IConnackPacket): void;
  lost(): void;
  message(topic: string, payload: Buffer, packet: IPublishPacket): void;
}

export class BrokerSession {
  /** The last connection or protocol problem, shown in /v1/status until the next connect. */
  lastError: string | undefined;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #events: SessionEvents;
  /** The offline status message, as the Last Will of each connection. */
  readonly #lastWill: () => Buffer;
  readonly #backoff: Backoff;
  #client: MqttClient | undefined;
  #protocol: 4 | 5;
  #state: BrokerState = 'disabled';
  #stableTimer?: NodeJS.Timeout;
  #connectedAt: number | undefined;
  #connects = 0;
  #fellBack = false;
  #stopping = false;
  #mConnected: prom.Gauge | undefined;
  /** The device's own certificate and key when provisioning gives them (agent/fleet/identity.ts). */
  #identity: (() => { cert: Buffer; key: Buffer } | undefined) | undefined;

  constructor(config: Config, log: Logger, events: SessionEvents, lastWill: () => Buffer) {
    this.#config = config;
    this.#log = log;
    this.#events = events;
    this.#lastWill = lastWill;
    this.#protocol = config.mqtt.protocolVersion;
    this.#backoff = new Backoff(config.mqtt.reconnectMinMs, config.mqtt.reconnectMaxMs);
  }

  get state(): BrokerState {
    return this.#state;
  }

  get protocolVersion(): 4 | 5 {
    return this.#protocol;
  }

  /** Whether the broker refused MQTT 5 and this session speaks 3.1.1. */
  get fellBack(): boolean {
    return this.#fellBack;
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** The client, while connected. */
  get client(): MqttClient | undefined {
    return this.#client?.connected ? this.#client : undefined;
  }

  /** Whether `client` is still this session's, connected, and the link is not stopping. */
  isCurrent(client: MqttClient): boolean {
    return this.#client === client && client.connected && !this.#stopping;
  }

  /** The connection half of FleetLink.status(). */
  info(): Record<string, unknown> {
    return {
      state: this.#state,
      protocolVersion: this.#protocol,
      connectedSince: this.#connectedAt ? new Date(this.#connectedAt).toISOString() : null,
      connects: this.#connects,
      reconnectAttempt: this.#backoff.attempt,
      lastError: this.lastError ?? null,
    };
  }

  /** The connection gauge exists (at 0) from start, with or without a broker. */
  registerMetrics(registry: Registry): void {
    this.#mConnected = new prom.Gauge({ name: 'edge_fleet_connected', help: '1 while connected to the fleet broker', registers: [registry] });
    this.#mConnected.set(0);
  }

  /** Every later connection uses the certificate and key `identity` gives (instead of mqtt.cert/mqtt.key). */
  useIdentity(identity: () => { cert: Buffer; key: Buffer } | undefined): void {
    this.#identity = identity;
  }

  /**
   * Connects again at once, with the identity useIdentity now gives (a renewed certificate):
   * the old connection ends with a DISCONNECT (no Last Will), then one new connection is
   * made. Resolves true when the broker accepted it within timeoutMs, false otherwise (the
   * session keeps retrying it with the backoff until told otherwise).
   */
  async reconnectNow(timeoutMs: number): Promise<boolean> {
    if (this.#stopping || !mqttConnect) return false;
    const old = this.#client;
    this.#client = undefined;
    clearTimeout(this.#stableTimer);
    if (old) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { old.end(true); resolve(); }, 2000);
        old.end(false, {}, () => { clearTimeout(t); resolve(); });
      });
      this.#mConnected?.set(0);
      this.#connectedAt = undefined;
      this.#events.lost();
    }
    if (this.#stopping) return false;
    this.#connect();
    const client = this.#client as MqttClient | undefined;
    if (!client) return false;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => { client.removeListener('connect', ok); resolve(false); }, timeoutMs);
      const ok = (): void => { clearTimeout(t); resolve(this.#client === client); };
      client.once('connect', ok);
    });
  }

  async connect(): Promise<void> {
    // Loaded only when there is a broker to connect to (~90 ms of start-up CPU otherwise).
    mqttConnect ??= (await import('mqtt')).default.connect;
    this.#connect();
  }

  /** Stopping: no more reconnects, and no log line for the connection closing. */
  halt(): void {
    this.#stopping = true;
    clearTimeout(this.#stableTimer);
  }

  /** Ends the connection: `goodbye` (the offline status) first when connected, then the client. */
  async end(goodbye: () => Buffer): Promise<void> {
    const client = this.#client;
    if (!client) return;
    this.#state = 'stopped';
    if (client.connected) {
      // A clean shutdown says so itself; the Last Will is only for the unclean ones.
      await this.publish(topics.status(this.#config.deviceId), goodbye(), { qos: 1, retain: true })
        .catch((err) => this.#log.warn({ err: describe(err) }, 'could not publish offline status'));
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { client.end(true); resolve(); }, 2000);
      client.end(false, {}, () => { clearTimeout(t); resolve(); });
    });
    this.#mConnected?.set(0);
  }

  /** Publishes only while connected: nothing is left for mqtt.js to queue offline. */
  publish(topic: string, payload: Buffer | string, opts: IClientPublishOptions): Promise<void> {
    const client = this.#client;
    if (!client?.connected) return Promise.reject(FleetErrors.OFFLINE());
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
    });
  }

  #connect(): void {
    const config = this.#config, log = this.#log;
    const opts = clientOptions(config, this.#protocol, this.#lastWill(), topics.status(config.deviceId));
    const identity = this.#identity?.();
    if (identity) Object.assign(opts, { cert: identity.cert, key: identity.key, rejectUnauthorized: true });
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
      this.lastError = undefined;
      this.#mConnected?.set(1);
      log.info({ broker: safeUrl(config.mqtt.url!), protocolVersion: this.#protocol, sessionPresent: connack.sessionPresent }, 'connected to the fleet broker');
      this.#events.connected(client, connack);
    });
    client.on('close', () => {
      if (this.#client !== client) return;
      if (this.#state === 'connected') log.warn({ broker: safeUrl(config.mqtt.url!) }, 'fleet broker connection lost; buffering');
      else if (!this.#stopping) {
        // An attempt that failed (refused, or no CONNACK within connectTimeoutMs): said at
        // attempts 1, 2, 4, 8..., so a long outage stays visible without flooding the log.
        const n = this.#backoff.attempt;
        const level = (n & (n - 1)) === 0 ? 'warn' : 'debug';
        log[level]({ broker: safeUrl(config.mqtt.url!), attempt: n, err: this.lastError ?? 'closed before CONNACK', retryInMs: client.options.reconnectPeriod, capMs: this.#backoff.capMs }, 'fleet broker not reachable; retrying');
      }
      if (!this.#stopping) this.#state = 'reconnecting';
      this.#connectedAt = undefined;
      this.#mConnected?.set(0);
      this.#events.lost();
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      if (this.#client !== client) return;
      this.lastError = err.message;
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
        this.#events.message(topic, payload, packet);
      } catch (err) {
        log.error({ topic, err: describe(err) }, 'fleet message handler failed');
      }
    });
  }
}
