// The telemetry buffer's way to the broker: the drain (drain.ts) publishes batches on the
// device's telemetry topics, sized to what the broker takes, resumes after a random share of
// the backlog spread on each connect, and is kicked by each commit of the buffer.
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { topics } from '../../protocol/topics.js';
import { parseAck } from '../../protocol/telemetry-ack.js';
import { backlogDelay } from './backoff.js';
import type { BrokerSession } from './broker-session.js';
import { TelemetryDrain, type LeaseSource } from './drain.js';

const TELEMETRY_CONTENT_TYPE = 'application/x-ndjson+gzip';

/** The telemetry buffer as the link sees it (TelemetryBuffer). */
export interface TelemetrySource extends LeaseSource {
  stats?(): unknown;
  record?(stream: string, payload: unknown): number;
  /** 'commit': records became durable, so there may be something to send. */
  on?(event: 'commit', listener: () => void): unknown;
  off?(event: 'commit', listener: () => void): unknown;
}

/**
 * A broker that advertises a maximum packet size (MQTT 5 CONNACK) closes the connection on
 * a larger PUBLISH: every re-send of that batch would close it again. The telemetry
 * message limit is then the smaller of mqtt.batchMaxBytes and what the broker takes.
 */
export function telemetryMessageLimit(batchMaxBytes: number, maximumPacketSize: number | undefined, deviceId: string): number {
  if (!maximumPacketSize) return batchMaxBytes;
  // PUBLISH framing: fixed header (5), topic (2 + its bytes, streams up to 32 characters),
  // packet id (2), properties (5 + the content type).
  const topic = Buffer.byteLength(topics.telemetry(deviceId, 'x'.repeat(32)));
  const framing = 5 + 2 + topic + 2 + 5 + 3 + TELEMETRY_CONTENT_TYPE.length;
  return Math.max(1024, Math.min(batchMaxBytes, maximumPacketSize - framing));
}

export class TelemetryUplink {
  readonly drain: TelemetryDrain;
  readonly #source: TelemetrySource;
  readonly #session: BrokerSession;
  readonly #config: Config;
  readonly #log: Logger;
  #resumeTimer?: NodeJS.Timeout;
  readonly #kick = (): void => this.drain.kick();

  constructor(source: TelemetrySource, session: BrokerSession, config: Config, log: Logger) {
    this.#source = source;
    this.#session = session;
    this.#config = config;
    this.#log = log;
    const m = config.mqtt;
    this.drain = new TelemetryDrain(source, (stream, payload) => this.#publishBatch(stream, payload), {
      inflight: m.inflight,
      recordsPerSecond: m.drainRecordsPerSecond,
      batchMaxBytes: m.batchMaxBytes,
      ack: m.telemetryAck,
      ackTimeoutMs: m.ackTimeoutMs,
      ackRetryMaxMs: m.ackRetryMaxMs,
    }, log);
  }

  /** From now on each commit of the buffer kicks the drain (a paused drain ignores it). */
  start(): void {
    this.#source.on?.('commit', this.#kick);
  }

  stop(): void {
    this.#source.off?.('commit', this.#kick);
    clearTimeout(this.#resumeTimer);
    this.drain.pause();
  }

  /** Connected: telemetry messages are limited to what this broker takes (telemetryMessageLimit). */
  limitMessages(maximumPacketSize: number | undefined): void {
    const batchMaxBytes = this.#config.mqtt.batchMaxBytes;
    const limit = telemetryMessageLimit(batchMaxBytes, maximumPacketSize, this.#config.deviceId);
    if (limit < batchMaxBytes && this.drain.messageLimit !== limit) {
      this.#log.warn({ maximumPacketSize, batchMaxBytes, messageLimit: limit }, 'the broker takes smaller packets than mqtt.batchMaxBytes: telemetry messages are limited to what it takes');
    }
    this.drain.messageLimit = limit;
  }

  /** The telemetry backlog goes out after a random share of mqtt.backlogSpreadMs (backoff.ts). */
  resumeAfterSpread(client: MqttClient): void {
    const { backlogSpreadMs, reconnectMaxMs } = this.#config.mqtt;
    const delay = backlogDelay(backlogSpreadMs, reconnectMaxMs);
    clearTimeout(this.#resumeTimer);
    if (delay === 0) {
      this.drain.resume();
      return;
    }
    this.#resumeTimer = setTimeout(() => {
      if (this.#session.isCurrent(client)) this.drain.resume();
    }, delay);
    this.#resumeTimer.unref();
  }

  /** A message on the telemetry ack topic of `stream` (controller acks only). */
  ack(topic: string, payload: Buffer, stream: string): void {
    const ack = parseAck(payload, stream);
    if ('problem' in ack) this.drain.refuseAck(topic, ack.problem);
    else this.drain.onAck(ack);
  }

  #publishBatch(stream: string, payload: Buffer): Promise<void> {
    const opts: IClientPublishOptions = { qos: 1 };
    if (this.#session.protocolVersion === 5) opts.properties = { contentType: TELEMETRY_CONTENT_TYPE };
    return this.#session.publish(topics.telemetry(this.#config.deviceId, stream), payload, opts);
  }
}
