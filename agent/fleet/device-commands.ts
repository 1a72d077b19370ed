// The commands a device answers (docs/protocol.md): ping, status, models.list,
// models.activate, models.rollback, telemetry.flush, samples.collect and feedback. Each gets what it
// works on as a parameter of registerDeviceCommands.
import { FleetErrors } from '../errors.js';
import type { CommandRouter } from './commands.js';
import type { DeviceStatus } from './device-status.js';
import { activeVersions, type ModelActivator, type ModelSync } from './model-sync.js';
import { SampleCollector, type InferenceLike } from './samples.js';
import type { TelemetrySource } from './telemetry-uplink.js';

export interface DeviceCommandTargets {
  status: DeviceStatus;
  sync: ModelSync;
  runtime: () => ModelActivator | undefined;
  /** telemetry.flush: FleetLink.flushTelemetry. */
  flush: (timeoutMs: number) => Promise<{ recordsAcked: number }>;
  telemetry: TelemetrySource | undefined;
  /** Subscribes to every inference (ModelRuntime.onInference), for samples.collect. */
  inferences: ((fn: (e: InferenceLike) => void) => void) | undefined;
  /** feedback: the same as POST /v1/models/:name/feedback (FieldExamples.feedback, the model checked). */
  feedback?: (model: string, body: { id: string; label: unknown }) => unknown;
}

export function registerDeviceCommands(r: CommandRouter, t: DeviceCommandTargets): void {
  const { status, sync } = t;
  r.register('ping', { description: 'liveness: answers {pong:true, ts}', run: () => ({ pong: true, ts: new Date().toISOString() }) });
  r.register('status', { description: 'the same document as GET /v1/status', run: () => JSON.parse(status.payload('online').toString()) as unknown });
  r.register('models.list', {
    description: 'active and installed versions per model, and the sync state',
    run: () => {
      const active = activeVersions(t.runtime());
      const names = new Set([...active.keys(), ...sync.reports().map((m) => m.name)]);
      return [...names].sort().map((name) => ({
        name,
        active: active.get(name) ?? null,
        installed: sync.installed(name),
        sync: sync.reports().find((m) => m.name === name) ?? null,
      }));
    },
  });
  r.register<{ name: string; version: string }>('models.activate', {
    description: 'activate an installed version',
    args: objectOf({ name: NAME_ARG, version: NAME_ARG }, ['name', 'version']),
    run: async (a) => {
      const res = await sync.activateInstalled(a.name, a.version);
      status.republish();
      return res;
    },
  });
  r.register<{ name: string; force?: boolean }>('models.rollback', {
    description: 'go back to the previously active version (force: also to a version that failed probation here)',
    args: objectOf({ name: NAME_ARG, force: { type: 'boolean' } }, ['name']),
    run: async (a) => {
      const rt = t.runtime();
      if (!rt) throw FleetErrors.UNAVAILABLE('no model runtime in this agent');
      const res = await rt.rollback(a.name, { force: a.force });
      status.republish();
      return res ?? { name: a.name, active: activeVersions(rt).get(a.name) ?? null };
    },
  });
  r.register<{ timeoutMs?: number }>('telemetry.flush', {
    description: 'publish everything buffered now; answers when the buffer is drained',
    args: objectOf({ timeoutMs: TIMEOUT_ARG }, []),
    run: async (a) => {
      const res = await t.flush(a.timeoutMs ?? 30_000);
      return { ...res, buffer: t.telemetry?.stats?.() ?? null };
    },
  });
  const buffer = t.telemetry;
  const samples = buffer?.record && t.inferences ? new SampleCollector((stream, payload) => buffer.record!(stream, payload)) : undefined;
  if (samples) t.inferences!((e) => samples.observe(e));
  r.register<{ model: string; count?: number; timeoutMs?: number }>('samples.collect', {
    description: 'copy the next COUNT inferences of MODEL (inputs and outputs) into the telemetry stream "samples"',
    args: objectOf({ model: NAME_ARG, count: { type: 'integer', minimum: 1, maximum: 100 }, timeoutMs: TIMEOUT_ARG }, ['model']),
    run: async (a) => {
      if (!samples) throw FleetErrors.UNAVAILABLE('this agent has no telemetry buffer or model runtime to collect samples from');
      if (!activeVersions(t.runtime()).has(a.model)) throw FleetErrors.UNAVAILABLE(`no active model "${a.model}" on this device`);
      return samples.collect(a.model, a.count ?? 10, a.timeoutMs ?? 30_000);
    },
  });
  r.register<{ model: string; id: string; label: unknown }>('feedback', {
    description: 'the right answer for an inference answer ID of MODEL (as POST /v1/models/MODEL/feedback {id, label}); answers {id, example, correct}',
    args: objectOf({ model: NAME_ARG, id: NAME_ARG, label: {} }, ['model', 'id', 'label']),
    run: (a) => {
      if (!t.feedback) throw FleetErrors.UNAVAILABLE('this agent takes no feedback (no model runtime)');
      return t.feedback(a.model, { id: a.id, label: a.label });
    },
  });
}

// Command args as plain JSON schema (TypeBox's import is start-up time; see desired.ts).
const NAME_ARG = { type: 'string', minLength: 1 } as const;
const TIMEOUT_ARG = { type: 'integer', minimum: 100, maximum: 300_000 } as const;
function objectOf(properties: Record<string, object>, required: string[]): object {
  return { type: 'object', properties, required };
}
