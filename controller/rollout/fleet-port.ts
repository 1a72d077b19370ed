// The rollout driver's view of the real fleet: group membership and device reports from the
// controller database, desired state published on the broker.
import type { MqttClient } from 'mqtt';
import type { FleetStore } from '../store.js';
import { deploy, sendCommand, targetKey, targetTopic } from '../requests.js';
import type { DeviceReport } from './plan.js';
import type { FleetPort } from './driver.js';

/** Signs a command for one device (devices with `security.commands.requireSignature`). */
export type CommandSigner = (cmd: { id: string; name: string; args: unknown }, deviceId: string) => object;

export class ControllerFleetPort implements FleetPort {
  constructor(
    private readonly store: FleetStore,
    private readonly client: () => MqttClient | undefined,
    private readonly protocolVersion: () => 4 | 5,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
    private readonly sign?: CommandSigner,
  ) {}

  groupMembers(group: string): string[] {
    return this.store.groupMembers(group);
  }

  reports(model: string): Map<string, DeviceReport> {
    const out = new Map<string, DeviceReport>();
    const drift = this.#driftVerdicts(model);
    // device_models by index: no device's whole documents are read (a dashboard with
    // rollouts asks for this every update).
    for (const m of this.store.modelReports(model)) {
      const rep: DeviceReport = { version: m.version, state: m.state, reason: m.reason };
      if (m.shadow && typeof m.shadow.agreement === 'number' && typeof m.shadow.samples === 'number') {
        rep.shadow = { agreement: m.shadow.agreement, samples: m.shadow.samples };
      }
      const v = drift.get(`${m.deviceId}@${m.version}`);
      if (v) rep.driftVerdict = v;
      out.set(m.deviceId, rep);
    }
    return out;
  }

  currentVersion(deviceId: string, model: string): string | undefined {
    const models = (this.store.device(deviceId)?.status?.models as { name: string; version: string }[] | undefined) ?? [];
    return models.find((m) => m.name === model)?.version;
  }

  async setDesired(deviceId: string, model: string, version: string): Promise<void> {
    const client = this.client();
    if (!client) throw new Error('the controller is not connected to the broker');
    const art = this.store.artifact({ name: model, version });
    if (art) {
      await deploy(client, this.store, { device: deviceId }, art);
      return;
    }
    // The version to go back to was never published (the device's own factory version): drop
    // the device's desired entry and ask the device to roll back by command.
    const target = { device: deviceId };
    const current = this.store.desired(targetKey(target))?.models ?? [];
    const doc = { v: 1 as const, models: current.filter((m) => m.name !== model), updatedAt: new Date().toISOString() };
    await client.publishAsync(targetTopic(target), JSON.stringify(doc), { qos: 1, retain: true });
    this.store.setDesired(targetKey(target), doc);
    const sign = this.sign;
    void sendCommand(client, this.protocolVersion(), deviceId, 'models.rollback', { name: model }, {
      timeoutMs: 15_000,
      sign: sign ? (cmd) => sign(cmd, deviceId) : undefined,
    })
      .then((reply) => this.log('rollback command answered', { deviceId, model, ok: reply.ok, error: reply.error?.code, signed: Boolean(sign) }))
      .catch((err) => this.log('rollback command failed', { deviceId, model, err: String(err) }));
  }

  #driftVerdicts(model: string): Map<string, 'ok' | 'warn' | 'alert'> {
    const out = new Map<string, 'ok' | 'warn' | 'alert'>();
    for (const r of this.store.driftReports(1000)) {
      const rep = r.report as { model?: string; version?: string; verdict?: string };
      if (rep.model !== model) continue;
      const key = `${r.deviceId}@${rep.version}`;
      if (out.has(key)) continue; // newest first
      if (rep.verdict === 'ok' || rep.verdict === 'warn' || rep.verdict === 'alert') out.set(key, rep.verdict);
    }
    return out;
  }
}
