// Runs rollout plans: applies decide()'s decisions through the fleet (desired state per
// device), halts and rolls back fleet-wide when a gate fails. Stateless between calls: all
// state is in the RolloutStore, so a restarted controller carries on where it stopped.
import { randomUUID } from 'node:crypto';
import { decide, FAILED_STATES, fieldEvidence, fieldGateOn, type Decision, type DeviceReport, type FieldEvidence, type Gates, type Rollout } from './plan.js';
import { RolloutStore, type Assignment } from './store.js';
import type { RolloutRecords } from '../store/types.js';

type Awaitable<T> = T | Promise<T>;
type Book<T> = { [K in keyof T]: T[K] extends (...a: infer A) => Promise<infer R> ? (...a: A) => Awaitable<R> : never };
/** The rollout records the driver reads and writes: the SQLite RolloutStore or the async RolloutRecords (PostgreSQL). */
export type RolloutBook = Omit<Book<RolloutRecords>, 'lease' | 'create'>;

/** What the driver needs from the fleet controller. */
export interface FleetPort {
  /** Devices that belong to a group ('*' or 'all': every known device). */
  groupMembers(group: string): Awaitable<string[]>;
  /** Each device's last report about a model. */
  reports(model: string): Awaitable<Map<string, DeviceReport>>;
  /** The version a device runs now (before the rollout touches it). */
  currentVersion(deviceId: string, model: string): Awaitable<string | undefined>;
  /** Publishes a device's desired version of a model (retained). */
  setDesired(deviceId: string, model: string, version: string): Promise<void>;
}

export interface StartRollout {
  model: string;
  version: string;
  group: string;
  stages: number[];
  gates: Gates;
  previousVersion?: string;
}

export interface RolloutStatus {
  rollout: Rollout;
  stages: { percent: number; devices: { id: string; state: string; reason?: string; version?: string }[] }[];
  events: { at: number; kind: string; detail: unknown }[];
  /** The field gate's figures now (with --gate field or labels): accuracies, gain, labels. */
  field?: FieldEvidence;
}

/** Records a new rollout plan (the controller's serve loop carries it out). */
export function planRollout(store: RolloutStore, spec: StartRollout, now = Date.now()): Rollout {
  const clash = store.running().find((x) => x.model === spec.model && x.group === spec.group);
  if (clash) throw new Error(`rollout ${clash.id} of ${clash.model}@${clash.version} to group ${clash.group} is still running; halt it first`);
  const r: Rollout = { id: randomUUID().slice(0, 8), ...spec, stageIndex: 0, stageStartedAt: now, state: 'running', createdAt: now };
  store.create(r);
  return r;
}

/**
 * Takes or renews this replica's lease on a rollout: true when this replica may carry it out
 * now. With replicas on one database only the lease holder acts, so each step is done once.
 */
export type RolloutLease = (rolloutId: string) => boolean | Promise<boolean>;

export class RolloutDriver {
  readonly #store: RolloutBook;
  readonly #fleet: FleetPort;
  readonly #onEvent: (r: Rollout, d: Decision) => void;
  readonly #lease: RolloutLease;

  constructor(store: RolloutBook, fleet: FleetPort, onEvent: (r: Rollout, d: Decision) => void = () => undefined, lease: RolloutLease = () => true) {
    this.#store = store;
    this.#fleet = fleet;
    this.#onEvent = onEvent;
    this.#lease = lease;
  }

  async start(spec: StartRollout, now = Date.now()): Promise<Rollout> {
    const r = planRollout(this.#sync(), spec, now);
    await this.tick(now);
    return (await this.#store.get(r.id))!;
  }

  /** Evaluates every running rollout until none has more to do right now. */
  async tick(now = Date.now()): Promise<void> {
    for (const r of (await this.#store.list()).filter((x) => x.state === 'halting')) {
      if (!(await this.#lease(r.id))) continue;
      await this.#recordOutcomes(r, await this.#fleet.reports(r.model), now);
      await this.#apply({ ...r, state: 'running' }, { kind: 'halt', reason: r.reason ?? 'halted by operator', evidence: { by: 'operator' } }, now);
    }
    for (const r of await this.#store.running()) {
      if (!(await this.#lease(r.id))) continue;
      for (let guard = 0; guard < r.stages.length * 2 + 2; guard++) {
        const current = (await this.#store.get(r.id))!;
        // One reading of the reports for both: reports arrive between the awaits, and a halt
        // decided on a report the outcomes did not record would lose the device's reason.
        const reports = await this.#fleet.reports(current.model);
        await this.#recordOutcomes(current, reports, now);
        const assigned = new Set((await this.#store.assignments(r.id)).map((a) => a.deviceId));
        const d = decide(current, await this.#fleet.groupMembers(current.group), assigned, reports, now);
        if (d.kind === 'wait') break;
        this.#onEvent(current, d);
        await this.#apply(current, d, now);
        if (d.kind === 'halt' || d.kind === 'complete') break;
      }
    }
  }

  /**
   * What each assigned device reports about this rollout's version, kept with the rollout:
   * after a halt the device reports its old version again, and a later deploy another one, but
   * the rollout's status must still say what happened to it in this rollout, and why.
   */
  async #recordOutcomes(r: Rollout, reports: Map<string, DeviceReport>, now: number): Promise<void> {
    for (const a of await this.#store.assignments(r.id)) {
      const rep = reports.get(a.deviceId);
      if (!rep || rep.version !== r.version) continue;
      if (a.outcome && a.outcome.state === rep.state && a.outcome.reason === rep.reason) continue;
      await this.#store.recordOutcome(r.id, a.deviceId, { state: rep.state, reason: rep.reason, at: now });
    }
  }

  async halt(id: string, reason: string): Promise<void> {
    const r = await this.#store.get(id);
    if (!r) throw new Error(`no rollout ${id}`);
    if (r.state !== 'running') return;
    await this.#recordOutcomes(r, await this.#fleet.reports(r.model), Date.now());
    await this.#apply(r, { kind: 'halt', reason, evidence: { by: 'operator' } }, Date.now());
  }

  async #apply(r: Rollout, d: Decision, now: number): Promise<void> {
    switch (d.kind) {
      case 'assign':
        for (const id of d.devices) {
          await this.#store.assign(r.id, { deviceId: id, stage: d.stage, assignedAt: now, previousVersion: await this.#fleet.currentVersion(id, r.model) });
          await this.#fleet.setDesired(id, r.model, r.version);
        }
        await this.#store.event(r.id, 'assigned', { stage: d.stage, devices: d.devices });
        return;
      case 'advance':
        await this.#store.setStage(r.id, d.stage, now);
        return;
      case 'complete':
        await this.#store.setState(r.id, 'completed');
        return;
      case 'halt':
        await this.#store.setState(r.id, 'halted', d.reason, d.evidence);
        // Fleet-wide rollback: every device the rollout touched goes back to what it ran. A
        // device that had not failed on its own is rolled back by this: its outcome says so
        // (it reports its old version from now on, never a verdict on this one).
        for (const a of await this.#store.assignments(r.id)) {
          const back = a.previousVersion ?? r.previousVersion;
          if (!back) continue;
          await this.#fleet.setDesired(a.deviceId, r.model, back);
          if (!a.outcome || !FAILED_STATES.has(a.outcome.state)) {
            await this.#store.recordOutcome(r.id, a.deviceId, { state: 'rolled_back', reason: `rolled back to ${back} by the controller: ${d.reason}`, at: now });
          }
        }
        await this.#store.event(r.id, 'rolled_back', { devices: (await this.#store.assignments(r.id)).map((a) => a.deviceId) });
        return;
      case 'wait':
        return;
    }
  }

  /** The SQLite RolloutStore: planning and the synchronous status() read it directly. */
  #sync(): RolloutStore {
    if (!(this.#store instanceof RolloutStore)) throw new Error('this needs the SQLite rollout store (the PostgreSQL store has no synchronous reads)');
    return this.#store;
  }

  /** A rollout's stages and events (SQLite store and a synchronous fleet port: the CLI and the SQLite dashboard). */
  status(id: string): RolloutStatus {
    const store = this.#sync();
    const r = store.get(id);
    if (!r) throw new Error(`no rollout ${id}`);
    const reports = this.#fleet.reports(r.model);
    if (reports instanceof Promise) throw new Error('status() needs a synchronous fleet port');
    return statusOf(r, store.assignments(id), reports, store.events(id));
  }
}

/**
 * Every rollout's stages and events from any rollout book and fleet port: the dashboard on
 * PostgreSQL, where a replica reads the rollouts all replicas share (each model's device
 * reports read once).
 */
export async function rolloutStatuses(book: Pick<RolloutBook, 'list' | 'assignments' | 'events'>, fleet: Pick<FleetPort, 'reports'>): Promise<RolloutStatus[]> {
  const reports = new Map<string, Map<string, DeviceReport>>();
  const out: RolloutStatus[] = [];
  for (const r of await book.list()) {
    if (!reports.has(r.model)) reports.set(r.model, await fleet.reports(r.model));
    const [assignments, events] = await Promise.all([book.assignments(r.id), book.events(r.id)]);
    out.push(statusOf(r, assignments, reports.get(r.model)!, events));
  }
  return out;
}

function statusOf(r: Rollout, assignments: Assignment[], reports: Map<string, DeviceReport>, events: RolloutStatus['events']): RolloutStatus {
  return {
    rollout: r,
    stages: r.stages.map((percent, i) => ({
      percent,
      devices: assignments.filter((a) => a.stage === i).map((a) => {
        // This rollout's version only: what the device reports now if it is about that
        // version, else what it last reported about it, else that it was assigned.
        const rep = reports.get(a.deviceId);
        if (rep && rep.version === r.version) return { id: a.deviceId, state: rep.state, reason: rep.reason, version: r.version };
        if (a.outcome) return { id: a.deviceId, state: a.outcome.state, reason: a.outcome.reason, version: r.version };
        return { id: a.deviceId, state: 'assigned', version: r.version };
      }),
    })),
    events,
    ...(fieldGateOn(r.gates) ? { field: fieldEvidence(r, assignments.map((a) => reports.get(a.deviceId))) } : {}),
  };
}
