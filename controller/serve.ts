// edge-fleet serve: subscribes to the fleet and keeps the controller database current;
// acks every telemetry batch to its device once it is committed (the device deletes the
// batch only then); answers artifact requests from the stored chunks. Replicas share the device-to-controller
// load through MQTT 5 shared subscriptions ($share/<group>/...); retained status goes to
// every replica (shared subscriptions get no retained messages).
import { EventEmitter } from 'node:events';
import type { IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import { decodeBatch } from '../protocol/telemetry-batch.js';
import { encodeFrame } from '../protocol/frame.js';
import { batchId, encodeAck } from '../protocol/telemetry-ack.js';
import { FleetErrors, type EdgeError } from '../protocol/errors.js';
import { ID_PATTERN, STREAM_NAME } from '../protocol/names.js';
import { filters, parseTopic, topics } from '../protocol/topics.js';
import { connectFleet } from './connect.js';
import { checkDocument, type DocumentKind } from './documents.js';
import { FleetStore, type IngestResult } from './store.js';
import { SqliteControllerStore } from './store/sqlite.js';
import type { ControllerStore } from './store/types.js';
import { Takeover, presence, presenceTopic } from './takeover.js';

/** Topics only the device publishes to (besides its status): a message on one is the device alive. */
const FROM_DEVICE: ReadonlySet<string> = new Set(['telemetry', 'reported', 'cmdRes', 'cmdReply', 'artifactReq']);

export interface ControllerOptions {
  broker: string;
  /** For mqtts:// brokers: CA, certificate and key (controller/broker-tls.ts). */
  tls?: import('./broker-tls.js').BrokerTls;
  clientId: string;
  /** Shared-subscription group name; undefined = plain subscriptions (one controller). */
  share?: string;
  /** Largest telemetry message accepted (bytes, decompressed). */
  maxBatchBytes?: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface BatchEvent extends IngestResult {
  deviceId: string;
  stream: string;
}

const MAX_JSON = 1024 * 1024;

/**
 * The controller's message handling. `store` is the database as given: the synchronous SQLite
 * FleetStore (tests and scripts read it directly) or any ControllerStore (PostgreSQL); the
 * controller itself writes through the async interface. Messages of one device are handled in
 * order, one at a time; different devices' messages overlap (PostgreSQL takes them in parallel).
 */
export class FleetController<S extends FleetStore | ControllerStore = FleetStore> extends EventEmitter {
  #client: MqttClient | undefined;
  readonly #db: ControllerStore;
  readonly #queues = new Map<string, Promise<void>>();
  #protocol: 4 | 5 = 5;
  #takeover: Takeover | undefined;
  readonly counters = { batches: 0, records: 0, duplicates: 0, rejected: 0, chunksServed: 0, statuses: 0, acks: 0 };

  constructor(readonly store: S, readonly opts: ControllerOptions) {
    super();
    this.#db = store instanceof FleetStore ? new SqliteControllerStore(store) : store as ControllerStore;
  }

  /** The database through the async interface the controller writes with. */
  get db(): ControllerStore {
    return this.#db;
  }

  /** Resolves once every message received so far has been handled. */
  async idle(): Promise<void> {
    while (this.#queues.size) await Promise.all([...this.#queues.values()]);
  }

  get protocolVersion(): 4 | 5 {
    return this.#protocol;
  }

  get client(): MqttClient | undefined {
    return this.#client;
  }

  async start(): Promise<void> {
    // Replicas (a shared subscription) take over the session of one that dies (takeover.ts).
    if (this.opts.share) this.#takeover = new Takeover({ broker: this.opts.broker, tls: this.opts.tls, clientId: this.opts.clientId, handle: (t, p, k) => this.#handle(t, p, k), log: this.opts.log });
    // The handler is attached before CONNACK: a resumed session's backlog arrives at once.
    const { client, protocolVersion } = await connectFleet(this.opts.broker, {
      clientId: this.opts.clientId,
      clean: false,
      reconnect: true,
      tls: this.opts.tls,
      will: this.#takeover ? { topic: presenceTopic(this.opts.clientId), payload: presence(this.opts.clientId, 'offline'), qos: 1, retain: true } : undefined,
      onMessage: (topic, payload, packet, c) => {
        this.#client ??= c;
        this.#handle(topic, payload, packet);
      },
    });
    this.#client = client;
    this.#protocol = protocolVersion;
    if (protocolVersion !== 5) this.#takeover = undefined;
    const shared = (f: string): string => (this.opts.share && protocolVersion === 5 ? `$share/${this.opts.share}/${f}` : f);
    // Status is a retained state topic, taken at QoS 0 and subscribed again after every
    // (re)connection: the broker then sends every device's current status. At QoS 1 a broker
    // delivers retained messages through the client's queue, and Mosquitto's default of 1,000
    // queued messages let through 1,020 of 10,000 (measured); at QoS 0 all 10,000 arrive. A
    // status missed while the controller was away is the retained one sent on resubscribing.
    // (mqtt.js sends no SUBSCRIBE for a filter it believes subscribed, as it does when the
    // broker kept the session: unsubscribing first makes the new SUBSCRIBE go out.)
    const statusSub = { [filters.status]: { qos: 0 as const } };
    client.on('connect', () => {
      client.unsubscribe(filters.status, () => client.subscribe(statusSub, (err) => {
        if (err) this.opts.log?.('status subscribe failed', { err: String(err) });
      }));
    });
    await client.subscribeAsync({
      ...statusSub,
      [shared(filters.telemetry)]: { qos: 1 },
      [shared(filters.reported)]: { qos: 1 },
      [shared(filters.cmdRes)]: { qos: 1 },
      [shared(filters.cmdReply)]: { qos: 1 },
      [shared(filters.artifactReq)]: { qos: 1 },
    });
    await this.#takeover?.attach(client);
  }

  /** A replica's presence goes to the takeover; every other message in its device's queue. */
  #handle(topic: string, payload: Buffer, packet: IPublishPacket): void {
    try {
      if (this.#takeover?.onPresence(topic, payload)) return;
    } catch (err) {
      this.opts.log?.('message handling failed', { topic, err: String(err) });
      return;
    }
    this.#enqueue(topic, payload, packet);
  }

  async stop(): Promise<void> {
    await this.#takeover?.stop();
    const c = this.#client;
    if (!c) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { c.end(true); resolve(); }, 2000);
      c.end(false, {}, () => { clearTimeout(t); resolve(); });
    });
  }

  /** Handles the message after the same device's earlier ones (topics name the device second). */
  #enqueue(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const key = topic.split('/')[2] ?? '';
    const run = async (): Promise<void> => {
      try {
        await this.#onMessage(topic, payload, packet);
      } catch (err) {
        this.opts.log?.('message handling failed', { topic, err: String(err) });
      }
    };
    const next = (this.#queues.get(key) ?? Promise.resolve()).then(run);
    this.#queues.set(key, next);
    void next.then(() => { if (this.#queues.get(key) === next) this.#queues.delete(key); });
  }

  #reject(device: string | undefined, topic: string, reason: string, bytes: number): void {
    this.counters.rejected++;
    this.#db.reject(device, topic, reason, bytes).catch((err: Error) => this.opts.log?.('rejection not stored', { topic, err: String(err) }));
    this.opts.log?.('rejected a message', { topic, reason });
  }

  async #onMessage(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const t = parseTopic(topic);
    if (!t || (t.device !== undefined && !ID_PATTERN.test(t.device))) return;
    const device = t.device!;
    // "Last seen" is any message the device itself sent just now, not only its status (which it
    // publishes on connect and on change): telemetry, reported state, command replies, artifact
    // requests. A retained message replayed on subscribe is old news; a status (the broker's
    // Last Will among them) is stored with its own time by upsertStatus.
    if (!packet.retain && payload.length > 0 && FROM_DEVICE.has(t.kind)) this.#db.seen(device);
    switch (t.kind) {
      case 'status': {
        if (payload.length === 0) return; // a cleared retained message
        const doc = this.#json(device, topic, payload, 'status');
        if (!doc) return;
        this.counters.statuses++;
        await this.#db.upsertStatus(device, doc);
        this.emit('status', device, doc);
        return;
      }
      case 'telemetry': {
        if (!STREAM_NAME.test(t.stream!)) return this.#reject(device, topic, 'bad stream name', payload.length);
        let batch;
        try {
          batch = decodeBatch(payload, { maxBytes: this.opts.maxBatchBytes ?? 64 * 1024 * 1024 });
        } catch (err) {
          return this.#reject(device, topic, (err as Error).message, payload.length);
        }
        if (batch.stream !== t.stream) {
          return this.#reject(device, topic, `batch header names stream "${batch.stream}", the topic "${t.stream}"`, payload.length);
        }
        // A drift record that is not a drift report is refused on its own (with its reason);
        // the rest of the batch is stored and the batch acked, so the device does not resend it.
        let records = batch.records;
        if (t.stream === 'drift') {
          records = records.filter((r) => {
            const c = checkDocument('drift', r.payload);
            if ('problem' in c) this.#reject(device, topic, `record ${r.seq}: ${c.problem}`, 0);
            return 'doc' in c;
          });
        }
        let res: IngestResult;
        try {
          res = await this.#db.ingestBatch(device, t.stream!, records, this.opts.clientId);
        } catch (err) {
          // Not storable (a payload nested too deeply to serialise, say): refused and not acked.
          return this.#reject(device, topic, `batch not stored: ${(err as Error).message}`, payload.length);
        }
        // Only now, after the commit, and for duplicates too: the device deletes the batch on
        // this ack (a re-sent batch is acked so it can be deleted at last).
        this.#ackBatch(device, t.stream!, { batch: batchId(payload), first: batch.first, last: batch.last, count: batch.count }, res);
        this.counters.batches++;
        this.counters.records += res.stored;
        this.counters.duplicates += res.duplicates;
        this.emit('batch', { deviceId: device, stream: t.stream!, ...res } satisfies BatchEvent);
        return;
      }
      case 'reported': {
        if (payload.length === 0) return;
        const doc = this.#json(device, topic, payload, 'reported');
        if (doc) {
          await this.#db.upsertReported(device, doc);
          this.emit('reported', device, doc);
        }
        return;
      }
      case 'cmdRes': {
        const doc = this.#json(device, topic, payload, 'command reply');
        if (doc) await this.#db.commandReplied(doc.id as string, device, doc);
        return;
      }
      case 'artifactReq':
        return this.#serveArtifact(device, payload, packet);
    }
  }

  /** The ack names the message exactly (its sha256 and header range), as the device sent it. */
  #ackBatch(device: string, stream: string, sent: { batch: string; first: number; last: number; count: number }, res: IngestResult): void {
    const c = this.#client;
    if (!c) return; // not possible once a message arrived; a missing ack only means a re-send
    this.counters.acks++;
    c.publish(topics.telemetryAck(device, stream), encodeAck({ stream, ...sent, stored: res.stored, duplicates: res.duplicates }), { qos: 1 }, (err) => {
      if (err) this.opts.log?.('telemetry ack not delivered', { device, stream, err: String(err) });
    });
  }

  /** A JSON object of the shape of `kind` (controller/documents.ts), or undefined (rejected with the reason). */
  #json(device: string, topic: string, payload: Buffer, kind: DocumentKind): Record<string, unknown> | undefined {
    if (payload.length > MAX_JSON) {
      this.#reject(device, topic, `JSON document of ${payload.length} bytes exceeds ${MAX_JSON}`, payload.length);
      return undefined;
    }
    try {
      const doc = JSON.parse(payload.toString('utf8')) as unknown;
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        this.#reject(device, topic, 'expected a JSON object', payload.length);
        return undefined;
      }
      const c = checkDocument(kind, doc);
      if ('doc' in c) return doc as Record<string, unknown>;
      this.#reject(device, topic, c.problem, payload.length);
    } catch {
      this.#reject(device, topic, 'not valid JSON', payload.length);
    }
    return undefined;
  }

  /** Answers one artifact request (manifest or chunk) with a binary frame. */
  async #serveArtifact(device: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const props = packet.properties;
    // Always the requesting device's own artifacts/res: a response topic naming anything else
    // (another device's desired state, say) is not published to.
    const replyTopic = topics.artifactRes(device);
    const opts: IClientPublishOptions = { qos: 1 };
    if (props?.correlationData) opts.properties = { correlationData: props.correlationData };
    const send = (header: object, body?: Buffer): void => {
      this.#client?.publish(replyTopic, encodeFrame(header, body), opts);
    };
    let req: { id?: unknown; op?: unknown; sha256?: unknown; index?: unknown };
    try {
      if (payload.length > 4096) throw new Error(`request of ${payload.length} bytes exceeds 4096`);
      req = JSON.parse(payload.toString('utf8')) as typeof req;
      if (typeof req !== 'object' || req === null) throw new Error('not an object');
    } catch (err) {
      return send({ id: null, ok: false, error: { code: FleetErrors.BAD_REQUEST.code, message: `expected JSON {"id","op":"manifest"|"chunk","sha256","index"?}: ${(err as Error).message}` } });
    }
    const id = typeof req.id === 'string' ? req.id : null;
    const fail = (error: (what: string) => EdgeError, what: string): void => { const e = error(what); send({ id, ok: false, op: req.op, error: { code: e.code, message: e.message } }); };
    if (typeof req.sha256 !== 'string') return fail(FleetErrors.BAD_REQUEST, '"sha256" must be a hex string');
    const art = await this.#db.artifact({ sha256: req.sha256 });
    if (!art) return fail(FleetErrors.UNKNOWN_ARTIFACT, `no published artifact with sha256 ${req.sha256}; run "edge-fleet publish"`);
    if (req.op === 'manifest') {
      return send({ id, ok: true, op: 'manifest', sha256: art.sha256, manifest: { sha256: art.sha256, size: art.size, chunkSize: art.chunkSize, chunks: art.chunks } });
    }
    if (req.op !== 'chunk') return fail(FleetErrors.BAD_REQUEST, `"op" must be "manifest" or "chunk", got ${JSON.stringify(req.op)}`);
    const index = req.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= art.chunks.length) {
      return fail(FleetErrors.BAD_REQUEST, `"index" must be an integer 0..${art.chunks.length - 1}`);
    }
    const data = await this.#db.chunk(art.sha256, index);
    if (!data) return fail(FleetErrors.UNKNOWN_ARTIFACT, `chunk ${index} of ${art.sha256} is missing from the database`);
    this.counters.chunksServed++;
    send({ id, ok: true, op: 'chunk', sha256: art.sha256, index, size: data.length }, data);
  }
}
