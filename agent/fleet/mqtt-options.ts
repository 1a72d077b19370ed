// Connection options for the device's MQTT client, from config.mqtt. Kept apart from the
// link so the security tests can check exactly what is handed to mqtt.js.
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { Config } from '../config/schema.js';
import { Errors, describe } from '../errors.js';

/** Broker-side session lifetime for clean:false under MQTT 5 (s): a week of being away. */
export const SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;
/** Largest packet this device accepts (bytes); bigger ones the broker must not send. */
export const MAX_INCOMING_PACKET = 32 * 1024 * 1024;

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw Errors.CONFIG_UNREADABLE(file, `${what}: ${describe(err)}`);
  }
}

export function clientOptions(config: Config, protocolVersion: 4 | 5, will: Buffer, willTopic: string): IClientOptions {
  const m = config.mqtt;
  const opts: IClientOptions = {
    clientId: config.deviceId,
    clean: false,
    protocolVersion,
    keepalive: m.keepaliveSeconds,
    reconnectPeriod: m.reconnectMinMs,
    // A broker that refuses the CONNECT (server busy, not authorized while an ACL is being
    // fixed, ...) is tried again with the backoff; without this mqtt.js stops reconnecting
    // for good after one refusal, and the device would stay off the fleet until restarted.
    reconnectOnConnackError: true,
    // Covers the TCP/TLS connect and the CONNACK: an attempt that hangs is dropped and retried.
    connectTimeout: m.connectTimeoutMs,
    // The telemetry buffer is the queue of record: never let mqtt.js queue while offline.
    queueQoSZero: false,
    // The link subscribes after every CONNACK itself (FleetLink#onConnected). mqtt.js's own
    // resubscribe bookkeeping marks a topic subscribed when the SUBSCRIBE is sent; when the
    // connection drops before the SUBACK and the broker then reports a session, mqtt.js
    // neither sends it again nor lets a later subscribe() through, and the device would never
    // get its commands or telemetry acks.
    resubscribe: false,
    will: { topic: willTopic, payload: will, qos: 1, retain: true },
  };
  if (protocolVersion === 5) {
    opts.properties = { sessionExpiryInterval: SESSION_EXPIRY_SECONDS, maximumPacketSize: MAX_INCOMING_PACKET, requestResponseInformation: false };
  }
  if (m.username !== undefined) opts.username = m.username;
  if (m.password !== undefined) opts.password = m.password;
  if (m.ca) opts.ca = readPem(m.ca, 'mqtt.ca');
  if (m.cert) opts.cert = readPem(m.cert, 'mqtt.cert');
  if (m.key) opts.key = readPem(m.key, 'mqtt.key');
  if (m.ca || m.cert) opts.rejectUnauthorized = true;
  return opts;
}

/** The broker URL without credentials, for logs and status. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid url)';
  }
}
