// One worker process of the fleet simulator (scripts/fleet-sim.ts forks several): a share of
// the simulated devices, each a real mqtt.js client speaking the agent's protocol with the
// protocol/ encoders: the retained status (online on connect, offline as the Last Will),
// the retained models report, telemetry batches with per-stream sequence numbers held until
// the controller's end-to-end ack (re-sent after ackTimeoutMs, so nothing accepted is lost),
// drift reports (stream "drift"), command replies; reconnects with the agent's own Backoff
// (full jitter, reset only after a stable connection, the cap at once on "server busy").
import mqtt, { type MqttClient } from 'mqtt';
import { Backoff, BROKER_BUSY, backlogDelay } from '../agent/fleet/backoff.js';
import { encodeBatch } from '../protocol/telemetry-batch.js';
import { batchId, parseAck } from '../protocol/telemetry-ack.js';
import { PROTOCOL, parseTopic, replyTopicAllowed, topics } from '../protocol/topics.js';

export interface SimOptions {
  url: string;
  minMs: number;
  capMs: number;
  stableAfterMs: number;
  backlogSpreadMs: number;
  ackTimeoutMs: number;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  /** Records per telemetry batch (at most). */
  batchRecords: number;
  /** Steady telemetry: every device records `records` records every `everyMs` (0 = none). */
  steady: { everyMs: number; records: number };
  /** Spread the first connects over this long (ms). */
  rampMs: number;
}

export type ToWorker =
  | { type: 'start'; ids: string[]; opts: SimOptions }
  | { type: 'record'; records: number; ids?: string[] }
  | { type: 'drop'; ids: string[] }
  | { type: 'revive'; ids: string[] }
  | { type: 'stop' };

export interface WorkerCounters {
  devices: number;
  connected: number;
  everConnected: number;
  connects: number;
  reconnects: number;
  busy: number;
  batchesSent: number;
  resends: number;
  batchesAcked: number;
  recordsMade: number;
  recordsAcked: number;
  duplicatesAcked: number;
  openBatches: number;
  /** The earliest last-CONNACK time over the devices (ms epoch); 0 while any is not connected. */
  minLastConnectAt: number;
  /** First-send time of the oldest batch still waiting for its ack (ms epoch), 0 = none. */
  oldestOpenSentAt: number;
  drift: number;
  cmdReplies: number;
  /** CONNACKs per second (epoch second -> count) since the last report. */
  connectsPerSecond: Record<string, number>;
}

interface Open { stream: string; bytes: Buffer; id: string; first: number; last: number; count: number; firstSentAt: number; sentAt: number }

class SimDevice {
  client: MqttClient | undefined;
  readonly backoff: Backoff;
  readonly pending = new Map<string, { seq: number; queued: { seq: number; ts: number; payload: unknown }[] }>();
  readonly open = new Map<string, Open>();
  holdUntil = 0;
  everConnected = false;
  lastConnectAt = 0;
  dropped = false;
  stableTimer?: NodeJS.Timeout;
  constructor(readonly id: string, readonly w: Worker) {
    this.backoff = new Backoff(w.opts.minMs, w.opts.capMs);
  }

  status(state: 'online' | 'offline'): Buffer {
    return Buffer.from(JSON.stringify({ v: 1, protocol: PROTOCOL, deviceId: this.id, state, agentVersion: '0.1.0-sim', models: [{ name: 'digits', version: '1.0.0' }],
      kernelVariant: 'sim', arch: process.arch, uptimeSeconds: Math.round(process.uptime()), hostname: 'fleet-sim', groups: ['sim'], mqtt: { protocolVersion: 5, fellBack: false }, ts: new Date().toISOString() }));
  }

  connect(): void {
    const o = this.w.opts;
    const client = mqtt.connect(o.url, {
      clientId: this.id, clean: false, protocolVersion: 5, keepalive: o.keepaliveSeconds,
      reconnectPeriod: o.minMs, reconnectOnConnackError: true, connectTimeout: o.connectTimeoutMs,
      queueQoSZero: false, resubscribe: false,
      will: { topic: topics.status(this.id), payload: this.status('offline'), qos: 1, retain: true },
      properties: { sessionExpiryInterval: 7 * 24 * 3600, requestResponseInformation: false },
    });
    this.client = client;
    // As agent/fleet/broker-session.ts: a fresh jittered delay before each reconnect.
    client.prependListener('close', () => {
      clearTimeout(this.stableTimer);
      client.options.reconnectPeriod = this.backoff.next();
    });
    client.on('connect', () => {
      if (this.client !== client) return;
      const c = this.w.counters;
      c.connects++;
      if (this.everConnected) c.reconnects++;
      this.everConnected = true;
      this.lastConnectAt = Date.now();
      const sec = String(Math.floor(Date.now() / 1000));
      c.connectsPerSecond[sec] = (c.connectsPerSecond[sec] ?? 0) + 1;
      clearTimeout(this.stableTimer);
      this.stableTimer = setTimeout(() => this.backoff.reset(), o.stableAfterMs);
      this.stableTimer.unref();
      client.subscribe({ [topics.cmd(this.id)]: { qos: 1 }, [topics.telemetryAcks(this.id)]: { qos: 1 } }, () => undefined);
      client.publish(topics.status(this.id), this.status('online'), { qos: 1, retain: true });
      client.publish(topics.reported(this.id), Buffer.from(JSON.stringify({ models: [{ name: 'digits', version: '1.0.0', state: 'active' }], deviceId: this.id, ts: new Date().toISOString() })), { qos: 1, retain: true });
      // The backlog (and any batch whose ack the lost connection took with it) waits a random share of the window.
      this.holdUntil = Date.now() + backlogDelay(o.backlogSpreadMs, o.capMs);
      for (const b of this.open.values()) b.sentAt = 0;
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      if (typeof err.code === 'number' && BROKER_BUSY.has(err.code)) {
        this.w.counters.busy++;
        this.backoff.toCap();
      }
    });
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet.properties));
  }

  onMessage(topic: string, payload: Buffer, props: { responseTopic?: string; correlationData?: Buffer } | undefined): void {
    const t = parseTopic(topic);
    if (!t || t.device !== this.id) return;
    if (t.kind === 'telemetryAck') {
      const ack = parseAck(payload, t.stream!);
      if ('problem' in ack) return;
      const b = this.open.get(ack.stream);
      if (!b || b.id !== ack.batch || b.first !== ack.first || b.last !== ack.last || b.count !== ack.count) return;
      this.open.delete(ack.stream);
      const c = this.w.counters;
      c.batchesAcked++;
      c.recordsAcked += b.count;
      c.duplicatesAcked += ack.duplicates;
      this.pump(Date.now());
    } else if (t.kind === 'cmd') {
      let cmd: { id?: unknown; name?: unknown };
      try { cmd = JSON.parse(payload.toString('utf8')) as typeof cmd; } catch { return; }
      if (typeof cmd.id !== 'string') return;
      const reply = Buffer.from(JSON.stringify({ id: cmd.id, ok: true, result: cmd.name === 'ping' ? { pong: true, deviceId: this.id } : null }));
      const to = props?.responseTopic && replyTopicAllowed(props.responseTopic, this.id) ? props.responseTopic : topics.cmdRes(this.id);
      this.client?.publish(to, reply, { qos: 1, properties: props?.correlationData ? { correlationData: props.correlationData } : undefined });
      this.w.counters.cmdReplies++;
    }
  }

  record(stream: string, n: number, payload: (seq: number) => unknown): void {
    let p = this.pending.get(stream);
    if (!p) this.pending.set(stream, (p = { seq: 0, queued: [] }));
    const ts = Date.now();
    for (let i = 0; i < n; i++) {
      const seq = ++p.seq;
      p.queued.push({ seq, ts, payload: payload(seq) });
    }
    this.w.counters.recordsMade += n;
  }

  /** Sends the next batch of each stream that has none waiting for its ack; re-sends overdue ones. */
  pump(now: number): void {
    const client = this.client;
    if (!client?.connected || now < this.holdUntil || this.dropped) return;
    const c = this.w.counters;
    for (const [stream, p] of this.pending) {
      const b = this.open.get(stream);
      if (b) {
        if (now - b.sentAt < this.w.opts.ackTimeoutMs) continue;
        if (b.sentAt > 0) c.resends++;
        b.sentAt = now;
        client.publish(topics.telemetry(this.id, stream), b.bytes, { qos: 1 });
        continue;
      }
      if (p.queued.length === 0) continue;
      const recs = p.queued.splice(0, this.w.opts.batchRecords);
      const bytes = encodeBatch(stream, recs, `sim-${this.id}`);
      const nb: Open = { stream, bytes, id: batchId(bytes), first: recs[0].seq, last: recs[recs.length - 1].seq, count: recs.length, firstSentAt: now, sentAt: now };
      this.open.set(stream, nb);
      c.batchesSent++;
      client.publish(topics.telemetry(this.id, stream), bytes, { qos: 1 });
    }
  }
}

const drift = (seq: number): unknown => ({ model: 'digits', version: '1.0.0', verdict: seq % 5 === 0 ? 'drift' : 'ok', window: { seq, size: 500 },
  features: [{ name: 'input', verdict: 'ok', score: 0.01 * (seq % 7) }] });
const metric = (seq: number): unknown => ({ model: 'digits', latencyMs: 3 + (seq % 9) / 10, class: seq % 10, confidence: 0.9 });

class Worker {
  opts!: SimOptions;
  readonly devices = new Map<string, SimDevice>();
  readonly counters: WorkerCounters = { devices: 0, connected: 0, everConnected: 0, connects: 0, reconnects: 0, busy: 0, batchesSent: 0, resends: 0, batchesAcked: 0,
    recordsMade: 0, recordsAcked: 0, duplicatesAcked: 0, openBatches: 0, minLastConnectAt: 0, oldestOpenSentAt: 0, drift: 0, cmdReplies: 0, connectsPerSecond: {} };

  start(ids: string[], opts: SimOptions): void {
    this.opts = opts;
    ids.forEach((id, i) => {
      const d = new SimDevice(id, this);
      this.devices.set(id, d);
      d.record('drift', 1, drift);
      this.counters.drift++;
      const delay = opts.rampMs > 0 ? Math.floor((i / ids.length) * opts.rampMs) : 0;
      setTimeout(() => d.connect(), delay);
    });
    this.counters.devices = ids.length;
    setInterval(() => this.tick(), 200);
    if (opts.steady.everyMs > 0) {
      setInterval(() => { for (const d of this.devices.values()) if (!d.dropped) d.record('metrics', opts.steady.records, metric); }, opts.steady.everyMs);
    }
    setInterval(() => this.report(), 250);
  }

  tick(): void {
    const now = Date.now();
    for (const d of this.devices.values()) d.pump(now);
  }

  report(): void {
    let connected = 0, ever = 0, open = 0, oldest = 0, minLast = Number.MAX_SAFE_INTEGER;
    for (const d of this.devices.values()) {
      if (d.client?.connected) {
        connected++;
        minLast = Math.min(minLast, d.lastConnectAt);
      } else if (!d.dropped) minLast = 0;
      if (d.everConnected) ever++;
      for (const b of d.open.values()) {
        open++;
        if (!oldest || b.firstSentAt < oldest) oldest = b.firstSentAt;
      }
      for (const p of d.pending.values()) if (p.queued.length && !oldest) oldest = Number.MAX_SAFE_INTEGER;
    }
    Object.assign(this.counters, { connected, everConnected: ever, openBatches: open, minLastConnectAt: minLast === Number.MAX_SAFE_INTEGER ? 0 : minLast, oldestOpenSentAt: oldest === Number.MAX_SAFE_INTEGER ? 0 : oldest });
    process.send!({ type: 'counters', counters: this.counters });
    this.counters.connectsPerSecond = {};
  }

  handle(m: ToWorker): void {
    switch (m.type) {
      case 'start': return this.start(m.ids, m.opts);
      case 'record':
        for (const d of m.ids ? m.ids.map((id) => this.devices.get(id)!).filter(Boolean) : this.devices.values()) d.record('metrics', m.records, metric);
        return;
      case 'drop':
        // Unclean: no DISCONNECT, so the broker publishes the Last Will (offline).
        for (const id of m.ids) {
          const d = this.devices.get(id);
          if (!d?.client) continue;
          d.dropped = true;
          d.client.removeAllListeners('connect');
          d.client.end(true);
          d.client = undefined;
        }
        return;
      case 'revive':
        for (const id of m.ids) {
          const d = this.devices.get(id);
          if (!d || !d.dropped) continue;
          d.dropped = false;
          d.connect();
        }
        return;
      case 'stop':
        for (const d of this.devices.values()) d.client?.end(true);
        setTimeout(() => process.exit(0), 200);
    }
  }
}

const worker = new Worker();
process.on('message', (m: ToWorker) => worker.handle(m));
process.send?.({ type: 'ready' });
