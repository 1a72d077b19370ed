// A replica's share when it dies (issue 20: "a replica killed with SIGKILL loses nothing: its
// share moves to the others"). Replicas keep persistent sessions, and a broker keeps a dead
// replica's session in the shared subscription: Mosquitto goes on handing it its share of the
// fleet's messages (queued for an offline client) until it returns or the session expires
// (a week). Measured before this (bench:fleet-scale, 500 devices, 2 replicas): 135 s until
// every batch in flight at the kill was stored, through device re-sends that half the time
// went into the dead session again.
//
// So every replica publishes a retained presence (online; its Last Will says offline). When
// one goes offline, the living replica first in id order connects with the dead replica's
// client id to its persistent session (no new subscription), takes what was queued and in
// flight there, and handles the session's share until the replica comes back, whose CONNECT
// takes the session over again (the broker then closes the adopter's connection).
import type { IPublishPacket, MqttClient } from 'mqtt';
import { PROTOCOL } from '../protocol/topics.js';
import type { BrokerTls } from './broker-tls.js';
import { connectFleet } from './connect.js';

export const presenceTopic = (id: string): string => `${PROTOCOL}/_controllers/${encodeURIComponent(id)}/presence`;
const PRESENCE_FILTER = `${PROTOCOL}/_controllers/+/presence`;

export function presence(id: string, state: 'online' | 'offline'): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, id, state, ts: new Date().toISOString() }));
}

export interface TakeoverOptions {
  broker: string;
  tls?: BrokerTls;
  clientId: string;
  handle: (topic: string, payload: Buffer, packet: IPublishPacket) => void;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export class Takeover {
  readonly #states = new Map<string, 'online' | 'offline'>();
  readonly #adopted = new Map<string, MqttClient | 'connecting'>();
  #stopped = false;
  #watch: MqttClient | undefined;

  constructor(readonly opts: TakeoverOptions) {}

  /**
   * Announces this replica on its main connection (which carries the Last Will) and watches
   * the others on a connection of its own: on the main one a Last Will would wait behind the
   * replica's telemetry backlog (measured: 33 s at 10,000 devices after a storm).
   */
  async attach(client: MqttClient): Promise<void> {
    const announce = (): void => {
      client.publish(presenceTopic(this.opts.clientId), presence(this.opts.clientId, 'online'), { qos: 1, retain: true });
    };
    client.on('connect', announce);
    announce();
    const { client: watch } = await connectFleet(this.opts.broker, {
      clientId: `${this.opts.clientId}-watch`, clean: true, reconnect: true, tls: this.opts.tls,
      onMessage: (topic, payload) => this.onPresence(topic, payload),
    });
    this.#watch = watch;
    // A clean session: subscribed again after every connection (the retained presences come again).
    const subscribe = (): void => void watch.subscribe({ [PRESENCE_FILTER]: { qos: 1 } }, () => undefined);
    watch.on('connect', subscribe);
    subscribe();
  }

  /** A presence message (the controller passes on every message of PRESENCE_FILTER). */
  onPresence(topic: string, payload: Buffer): boolean {
    const parts = topic.split('/');
    if (parts.length !== 5 || parts[2] !== '_controllers' || parts[4] !== 'presence') return false;
    if (payload.length === 0) return true;
    let doc: { id?: unknown; state?: unknown };
    try { doc = JSON.parse(payload.toString('utf8')) as typeof doc; } catch { return true; }
    const id = decodeURIComponent(parts[3]);
    if (doc.state !== 'online' && doc.state !== 'offline') return true;
    this.#states.set(id, doc.state);
    this.#review();
    return true;
  }

  #review(): void {
    if (this.#stopped) return;
    const living = [...this.#states].filter(([, s]) => s === 'online').map(([id]) => id).concat(this.opts.clientId);
    const first = [...new Set(living)].sort()[0];
    for (const [id, state] of this.#states) {
      if (id === this.opts.clientId) continue;
      const mine = this.#adopted.get(id);
      if (state === 'online' && mine) this.#release(id, 'it is back');
      else if (state === 'offline' && !mine && first === this.opts.clientId) void this.#adopt(id);
    }
  }

  async #adopt(id: string): Promise<void> {
    this.#adopted.set(id, 'connecting');
    try {
      const { client } = await connectFleet(this.opts.broker, {
        clientId: id, clean: false, reconnect: false, tls: this.opts.tls, timeoutMs: 30_000,
        onMessage: (topic, payload, packet) => this.opts.handle(topic, payload, packet),
      });
      if (this.#adopted.get(id) !== 'connecting' || this.#stopped) { client.end(true); return; }
      this.#adopted.set(id, client);
      this.opts.log?.('took over the session of a replica that went away', { replica: id });
      // Taken over again (the replica returned) or the broker went away: this adoption ends;
      // the next presence change decides again.
      client.on('close', () => {
        if (this.#adopted.get(id) !== client) return;
        this.#adopted.delete(id);
        client.end(true);
      });
    } catch (err) {
      this.#adopted.delete(id);
      this.opts.log?.('could not take over the session of a replica that went away; trying again', { replica: id, err: String(err) });
      // A broker busy with a reconnect storm may not answer in time: try again while the
      // replica is still away and this one is still the first living replica.
      setTimeout(() => this.#review(), 2000).unref();
    }
  }

  #release(id: string, why: string): void {
    const c = this.#adopted.get(id);
    this.#adopted.delete(id);
    if (c && c !== 'connecting') {
      c.end(true);
      this.opts.log?.('gave back the session of a replica', { replica: id, why });
    }
  }

  /** The sessions this replica holds for others. */
  adopted(): string[] {
    return [...this.#adopted.keys()];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watch?.end(true);
    for (const id of [...this.#adopted.keys()]) this.#release(id, 'stopping');
  }
}
