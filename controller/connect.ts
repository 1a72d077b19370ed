// The controller's MQTT connection: MQTT 5 first, MQTT 3.1.1 when the broker refuses it
// (the embedded aedes broker speaks only 3.1.1).
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { BrokerTls } from './broker-tls.js';

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
  /** For mqtts:// brokers: the CA to trust and the controller's certificate and key. */
  tls?: BrokerTls;
  /** The Last Will (a replica's presence, controller/takeover.ts). */
  will?: IClientOptions['will'];
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
  if (opts.will) o.will = opts.will;
  if (version === 5 && !opts.clean) o.properties = { sessionExpiryInterval: 7 * 24 * 3600 };
  if (opts.tls) Object.assign(o, { ...opts.tls, rejectUnauthorized: true });
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
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      resolve(client);
    });
    const onClose = (): void => fail(new Error(`cannot connect to ${url}: the connection closed before the broker accepted it${opts.tls?.cert ? '' : ' (a broker that requires client certificates closes it so: pass --cert and --key)'}`));
    // Named, so that it is removed once connected: a later error must not end the client.
    const onError = (err: Error): void => fail(explain(url, err, opts.tls));
    client.once('error', onError);
    client.once('close', onClose);
  });
}

/** A connection error with what to do about it. */
function explain(url: string, err: Error, tls: BrokerTls | undefined): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const m = err.message;
  let hint = '';
  if (code === 'ECONNREFUSED') hint = 'nothing listens there: is the broker running, and is the URL (host, port, mqtt:// or mqtts://) right?';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') hint = 'the host name does not resolve';
  else if (/self[- ]signed|unable to (get|verify)|certificate chain/i.test(m)) hint = tls?.ca ? 'the broker\'s certificate is not signed by the --ca given' : 'the broker\'s certificate is signed by a private CA: pass it with --ca';
  else if (/certificate required|alert.*certificate|bad certificate/i.test(m)) hint = tls?.cert ? 'the broker refused the controller\'s certificate (signed by another CA, or revoked?)' : 'the broker requires a client certificate: pass --cert and --key';
  else if (/Not authorized|Bad username/i.test(m)) hint = 'the broker refused these credentials (check its ACL and the certificate\'s common name)';
  const e = new Error(`cannot connect to ${url}: ${m}${hint ? ` (${hint})` : ''}`);
  (e as { code?: unknown }).code = (err as { code?: unknown }).code;
  return e;
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
