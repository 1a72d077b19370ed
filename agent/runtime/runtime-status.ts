// What the runtime reports: why it is not ready, the /v1/models listing (each model's
// versions, backend, queue, admission and latency; each ensemble's members) and the
// runtime section of /v1/status. Read-only views of ServedModels.
import { ensembleOutputSpec, type RuntimeConfig, type ServedModels } from './served-models.js';

/** Why the configured models do not all serve yet, or undefined when they do. */
export function notReadyReason(served: ServedModels, configured: readonly { name: string }[]): string | undefined {
  const reasons: string[] = [];
  for (const m of configured) {
    const slot = served.slots.get(m.name);
    if (slot?.active?.warmedUpAt !== undefined) continue;
    if (slot?.lastError) reasons.push(`model ${m.name} failed to load: ${slot.lastError.message}`);
    else reasons.push(`model ${m.name} is loading`);
  }
  return reasons.length ? reasons.join('; ') : undefined;
}

export function runtimeStatus(served: ServedModels, cfg: RuntimeConfig): Record<string, unknown> {
  const failed = [...served.slots.values()].filter((s) => s.lastError);
  return {
    models: listServed(served),
    runtime: {
      threads: cfg.threads || 'auto', graphOptimizationLevel: cfg.graphOptimizationLevel, offThreadAboveMs: cfg.offThreadAboveMs, offThreadNice: cfg.offThreadNice, warmup: cfg.warmup,
      queueLimit: cfg.queueLimit, queueWaitFactor: cfg.queueWaitFactor, maxQueueWaitMs: cfg.maxQueueWaitMs, maxRequestAgeMs: cfg.maxRequestAgeMs,
    },
    warning: failed.length ? `last package refused for ${failed.map((s) => s.name).join(', ')}` : undefined,
  };
}

export function listServed(served: ServedModels): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const slot of served.slots.values()) {
    const v = slot.active;
    out.push({
      name: slot.name,
      kind: 'model',
      ready: v?.warmedUpAt !== undefined,
      version: v?.version,
      backend: v?.choice.chosen,
      backendRequested: slot.backend,
      inputs: v?.pkg.manifest.inputs,
      outputs: v?.pkg.manifest.outputs,
      task: v?.pkg.manifest.task,
      active: v?.info(),
      previous: slot.previous ? { version: slot.previous.version, package: slot.previous.pkg.dir, backend: slot.previous.choice.chosen } : undefined,
      loading: slot.loading,
      lastError: slot.lastError,
      shadow: slot.shadow?.summary(),
      ab: slot.ab ? { version: slot.ab.version.version, fraction: slot.ab.fraction, served: slot.ab.served } : undefined,
      queueDepth: slot.queue.depth,
      admission: served.gates.get(slot.name)?.describe(),
      latency: slot.latency(),
    });
  }
  for (const e of served.ensembles.values()) {
    const first = served.slots.get(e.members[0]!)?.active;
    out.push({
      name: e.name,
      kind: 'ensemble',
      ready: e.members.every((m) => served.slots.get(m)?.active?.warmedUpAt !== undefined),
      fusion: e.fusion,
      weights: e.weights,
      members: e.members.map((m) => ({ model: m, version: served.slots.get(m)?.active?.version })),
      inputs: first?.pkg.manifest.inputs,
      outputs: [ensembleOutputSpec(first?.pkg.manifest.outputs)],
      queueDepth: e.queue.depth,
      admission: served.gates.get(e.name)?.describe(),
    });
  }
  return out;
}
