// Artifact requests over the broker: each request carries an id (and, on MQTT 5, a response
// topic and correlation data); the answer on the device's artifact response topic settles the
// request with that id. A late answer, for a request that timed out, is dropped.
import { randomUUID } from 'node:crypto';
import type { IClientPublishOptions, IPublishPacket } from 'mqtt';
import { FleetErrors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeFrame, type Frame } from '../../protocol/frame.js';
import { topics } from '../../protocol/topics.js';
import type { ArtifactResponseHeader } from '../models/download.js';
import type { BrokerSession } from './broker-session.js';

export interface ArtifactRequestBody {
  op: string;
  sha256: string;
  index?: number;
}

export class ArtifactRequests {
  readonly #session: BrokerSession;
  readonly #deviceId: string;
  readonly #log: Logger;
  readonly #pending = new Map<string, { resolve: (f: Frame<ArtifactResponseHeader>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(session: BrokerSession, deviceId: string, log: Logger) {
    this.#session = session;
    this.#deviceId = deviceId;
    this.#log = log;
  }

  request(body: ArtifactRequestBody, timeoutMs: number): Promise<Frame<ArtifactResponseHeader>> {
    const client = this.#session.client;
    if (!client?.connected) return Promise.reject(FleetErrors.OFFLINE());
    const id = randomUUID();
    const d = this.#deviceId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(FleetErrors.TIMEOUT(`artifact ${body.op}${body.index !== undefined ? ` ${body.index}` : ''}`, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const opts: IClientPublishOptions = { qos: 1 };
      if (this.#session.protocolVersion === 5) opts.properties = { responseTopic: topics.artifactRes(d), correlationData: Buffer.from(id) };
      client.publish(topics.artifactReq(d), JSON.stringify({ id, ...body }), opts, (err) => {
        if (err && this.#pending.delete(id)) {
          clearTimeout(timer);
          reject(FleetErrors.OFFLINE());
        }
      });
    });
  }

  /** A message on the artifact response topic. */
  response(payload: Buffer, packet: IPublishPacket): void {
    let frame: Frame<ArtifactResponseHeader>;
    try {
      frame = decodeFrame<ArtifactResponseHeader>(payload);
    } catch (err) {
      this.#log.warn({ err: describe(err) }, 'ignored a malformed artifact response');
      return;
    }
    const id = typeof frame.header.id === 'string' ? frame.header.id : packet.properties?.correlationData?.toString('utf8');
    const p = id ? this.#pending.get(id) : undefined;
    if (!p) return; // late answer to a request that timed out
    this.#pending.delete(id!);
    clearTimeout(p.timer);
    p.resolve(frame);
  }

  /** Stopping: every open request fails as offline. */
  rejectAll(): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(FleetErrors.OFFLINE());
    }
    this.#pending.clear();
  }
}
