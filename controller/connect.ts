// The controller's MQTT connection: MQTT 5 first, MQTT 3.1.1 when the broker refuses it
// (the embedded aedes broker speaks only 3.1.1).
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';

export interface FleetConnection {
  client: MqttClient;
  protocolVersion: 4 | 5;
}

export interface ConnectOptions {
  clientId: string;
  /** false: a persistent session, so messages published while this client is away wait for it. */
  clean: boolean;
  protocolVersion?: 4 | 5;
  timeoutMs?: number;
  /** Keep reconnecting after the first connection (serve) or fail fast (one-shot commands). */
  reconnect?: boolean;
  /**
   * Attached before the connection is made: a resumed session's queued messages arrive right
   * after CONNACK, and mqtt.js acknowledges each one whether anything listens or not.
   */
  onMessage?: (topic: string, payload: Buffer, packet: IPublishPacket, client: MqttClient) => void;
}

function attempt(url: string, opts: ConnectOptions, version: 4 | 5): Promise<MqttClient> {
  const o: IClientOptions = {
    clientId: opts.clientId,
    clean: opts.clean,
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: opts.timeoutMs ?? 10_000,
  };
  if (version === 5 && !opts.clean) o.properties = { sessionExpiryInterval: 7 * 24 * 3600 };
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, o);
    if (opts.onMessage) client.on('message', (topic, payload, packet) => opts.onMessage!(topic, payload, packet, client));
    const fail = (err: Error): void => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      reject(err);
    };
    client.once('connect', () => {
      client.removeListener('error', fail);
      client.removeListener('close', onClose);
      resolve(client);
    });
    const onClose = (): void => fail(new Error(`cannot connect to ${url}`));
    client.once('error', fail);
    client.once('close', onClose);
  });
}

export async function connectFleet(url: string, opts: ConnectOptions): Promise<FleetConnection> {
  let version: 4 | 5 = opts.protocolVersion ?? 5;
  let client: MqttClient;
  try {
    client = await attempt(url, opts, version);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (version !== 5 || (code !== 1 && code !== 132)) throw err;
    version = 4;
    client = await attempt(url, opts, version);
  }
  if (opts.reconnect) client.options.reconnectPeriod = 1000;
  client.on('error', () => undefined); // reconnects report through 'close'/'offline'
  return { client, protocolVersion: version };
}
