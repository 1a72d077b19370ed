// The rollout driver's view of the real fleet: group membership and device reports from the
// controller database, desired state published on the broker.
import type { MqttClient } from 'mqtt';
import { FleetStore, type DeviceRow } from '../store.js';
import type { ControllerStore } from '../store/types.js';

type Awaitable<T> = T | Promise<T>;

/** f of a value or of a promised value, without making a sync value async. */
function then<T, R>(v: Awaitable<T>, f: (t: T) => R): Awaitable<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}
import { deploy, sendCommand, targetKey, targetTopic } from '../requests.js';
import type { DeviceReport } from './plan.js';
import type { FieldPair, FieldReport, FieldTally } from '../../protocol/field-accuracy.js';
import type { FleetPort } from './driver.js';

/** Signs a command for one device (devices with `security.commands.requireSignature`). */
export type CommandSigner = (cmd: { id: string; name: string; args: unknown }, deviceId: string) => object;

export class ControllerFleetPort implements FleetPort {
  constructor(
    /** The SQLite FleetStore (answers synchronously: `edge-fleet rollout status`) or a ControllerStore (PostgreSQL). */
    private readonly store: FleetStore | ControllerStore,
    private readonly client: () => MqttClient | undefined,
    private readonly protocolVersion: () => 4 | 5,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
    private readonly sign?: CommandSigner,
  ) {}

  groupMembers(group: string): Awaitable<string[]> {
    return this.store.groupMembers(group);
  }

  reports(model: string): Awaitable<Map<string, DeviceReport>> {
    const s = this.store;
    // SQLite: device_models by index, no device's whole documents read (a dashboard with
    // rollouts asks for this every update). PostgreSQL: from the device rows.
    if (s instanceof FleetStore) return reportsFrom(s.modelReports(model), s.driftReports(1000), model);
    return Promise.all([s.devices(), s.driftReports(1000)]).then(([devices, drift]) => reportsFrom(modelReportsOf(devices, model), drift, model));
  }

  currentVersion(deviceId: string, model: string): Awaitable<string | undefined> {
    return then<DeviceRow | undefined, string | undefined>(this.store.device(deviceId), (d) => {
      const models = (d?.status?.models as { name: string; version: string }[] | undefined) ?? [];
      return models.find((m) => m.name === model)?.version;
    });
  }

  async setDesired(deviceId: string, model: string, version: string): Promise<void> {
    const client = this.client();
    if (!client) throw new Error('the controller is not connected to the broker');
    const art = await this.store.artifact({ name: model, version });
    if (art) {
      await deploy(client, this.store, { device: deviceId }, art);
      return;
    }
    // The version to go back to was never published (the device's own factory version): drop
    // the device's desired entry and ask the device to roll back by command.
    const target = { device: deviceId };
    const current = (await this.store.desired(targetKey(target)))?.models ?? [];
    const doc = { v: 1 as const, models: current.filter((m) => m.name !== model), updatedAt: new Date().toISOString() };
    await client.publishAsync(targetTopic(target), JSON.stringify(doc), { qos: 1, retain: true });
    await this.store.setDesired(targetKey(target), doc);
    const sign = this.sign;
    void sendCommand(client, this.protocolVersion(), deviceId, 'models.rollback', { name: model }, {
      timeoutMs: 15_000,
      sign: sign ? (cmd) => sign(cmd, deviceId) : undefined,
    })
      .then((reply) => this.log('rollback command answered', { deviceId, model, ok: reply.ok, error: reply.error?.code, signed: Boolean(sign) }))
      .catch((err) => this.log('rollback command failed', { deviceId, model, err: String(err) }));
  }
}

interface ModelReport { deviceId: string; version?: string; state?: string; reason?: string; shadow?: { agreement?: unknown; samples?: unknown }; field?: unknown }

/** Each device's report about `model` from its reported document (what FleetStore.modelReports reads by index). */
function modelReportsOf(devices: DeviceRow[], model: string): ModelReport[] {
  const out: ModelReport[] = [];
  for (const d of devices) {
    const m = ((d.reported?.models as (Omit<ModelReport, 'deviceId'> & { name?: string })[] | undefined) ?? []).find((x) => x.name === model);
    if (m) out.push({ ...m, deviceId: d.deviceId });
  }
  return out;
}

/** Each device's report about `model`, with the drift verdict of its version (reports newest first). */
export function reportsFrom(reports: ModelReport[], driftReports: { deviceId: string; report: unknown }[], model: string): Map<string, DeviceReport> {
  const out = new Map<string, DeviceReport>();
  const drift = driftVerdicts(driftReports, model);
  for (const m of reports) {
    if (typeof m.state !== 'string') continue;
    const rep: DeviceReport = { version: m.version, state: m.state, reason: m.reason };
    if (m.shadow && typeof m.shadow.agreement === 'number' && typeof m.shadow.samples === 'number') {
      rep.shadow = { agreement: m.shadow.agreement, samples: m.shadow.samples };
    }
    if (isFieldReport(m.field)) rep.field = m.field;
    const v = drift.get(`${m.deviceId}@${m.version}`);
    if (v) rep.driftVerdict = v;
    out.set(m.deviceId, rep);
  }
  return out;
}

const count = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** The shape controller/documents.ts checks on ingest, checked again on what is read back (a row written by hand or by an older version). */
function isFieldReport(f: unknown): f is FieldReport {
  if (!f || typeof f !== 'object') return false;
  const { versions, pairs } = f as { versions?: unknown; pairs?: unknown };
  if (!versions || typeof versions !== 'object' || !Array.isArray(pairs)) return false;
  const tallyOk = Object.values(versions).every((t) => t && typeof t === 'object' && count((t as FieldTally).labelled) && count((t as FieldTally).correct));
  const pairsOk = pairs.every((p: Partial<FieldPair> | null) => p && typeof p.primary === 'string' && typeof p.shadow === 'string'
    && count(p.labelled) && count(p.primaryCorrect) && count(p.shadowCorrect));
  return tallyOk && pairsOk;
}

function driftVerdicts(reports: { deviceId: string; report: unknown }[], model: string): Map<string, 'ok' | 'warn' | 'alert'> {
  const out = new Map<string, 'ok' | 'warn' | 'alert'>();
  for (const r of reports) {
    const rep = r.report as { model?: string; version?: string; verdict?: string };
    if (rep.model !== model) continue;
    const key = `${r.deviceId}@${rep.version}`;
    if (out.has(key)) continue; // newest first
    if (rep.verdict === 'ok' || rep.verdict === 'warn' || rep.verdict === 'alert') out.set(key, rep.verdict);
  }
  return out;
}
