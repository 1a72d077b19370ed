// What the device says about itself on the broker: the retained status message (online or
// offline, versions serving, CPU, agent version; also the Last Will) and the retained report
// of model sync. Both are published again when what they list changes and on each connect.
import os from 'node:os';
import type { AgentContext } from '../component.js';
import { cpuFeatures, kernelVariant } from '../hardware.js';
import { AGENT_VERSION } from '../version.js';
import { PROTOCOL, topics } from '../../protocol/topics.js';
import type { BrokerSession } from './broker-session.js';
import { activeVersions, type ModelActivator } from './model-sync.js';

/** Report states in which the version serves (the rollout slots add probation and committed). */
const SERVING = new Set(['active', 'probation', 'committed']);

export interface ModelsReport {
  models: { name: string; version: string; state: string }[];
}

export class DeviceStatus {
  readonly #ctx: AgentContext;
  readonly #session: BrokerSession;
  readonly #runtime: () => ModelActivator | undefined;
  readonly #extra: (() => Record<string, unknown>) | undefined;
  #lastReport: Buffer | undefined;
  #activeReported = '';

  /** `extra`: more status fields (for example the drift summary). */
  constructor(ctx: AgentContext, session: BrokerSession, runtime: () => ModelActivator | undefined, extra?: () => Record<string, unknown>) {
    this.#ctx = ctx;
    this.#session = session;
    this.#runtime = runtime;
    this.#extra = extra;
  }

  /** The status message: retained while online, the Last Will and the clean goodbye when offline. */
  payload(state: 'online' | 'offline', reason?: string): Buffer {
    const { config, startedAt } = this.#ctx;
    const models = [...activeVersions(this.#runtime())].map(([name, version]) => ({ name, version }));
    return Buffer.from(JSON.stringify({
      v: 1,
      protocol: PROTOCOL,
      deviceId: config.deviceId,
      state,
      ...(reason ? { reason } : {}),
      agentVersion: AGENT_VERSION,
      models,
      cpuFeatures: cpuFeatures(),
      kernelVariant: kernelVariant(),
      arch: process.arch,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      hostname: os.hostname(),
      groups: config.mqtt.groups,
      mqtt: { protocolVersion: this.#session.protocolVersion, fellBack: this.#session.fellBack },
      ...(this.#extra?.() ?? {}),
      ts: new Date().toISOString(),
    }));
  }

  /** Publishes the online status again (while connected). */
  republish(): void {
    if (!this.#session.connected) return;
    void this.#session.publish(topics.status(this.#ctx.config.deviceId), this.payload('online'), { qos: 1, retain: true }).catch(() => undefined);
  }

  /** Model sync's report: kept for the next connect, published now while connected. */
  report(doc: ModelsReport): void {
    // An activation changes what the status message lists: republish it then.
    const active = doc.models.filter((m) => SERVING.has(m.state)).map((m) => `${m.name}@${m.version}`).sort().join(' ');
    if (active !== this.#activeReported) {
      this.#activeReported = active;
      this.republish();
    }
    const buf = Buffer.from(JSON.stringify({ ...doc, deviceId: this.#ctx.config.deviceId, ts: new Date().toISOString() }));
    this.#lastReport = buf;
    if (this.#session.connected) {
      void this.#session.publish(topics.reported(this.#ctx.config.deviceId), buf, { qos: 1, retain: true }).catch(() => undefined);
    }
  }

  /** Connected: the last report again. */
  republishReport(): void {
    if (this.#lastReport) void this.#session.publish(topics.reported(this.#ctx.config.deviceId), this.#lastReport, { qos: 1, retain: true }).catch(() => undefined);
  }
}
