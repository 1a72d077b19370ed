// Deploys that did not land, as the device reported them (its `reported` document): a version
// refused (signature, checksum, verification) or rolled back, with the device's own reason.
// `edge-fleet devices` and the fleet dashboard both list these, so neither shows a device as
// all well while a deploy to it has failed.

export interface ReportedModel {
  name: string;
  version: string;
  state: string;
  reason?: string;
}

export interface DeployProblem {
  model: string;
  version: string;
  state: 'failed' | 'rolled_back';
  reason: string;
}

export function reportedModels(reported: unknown): ReportedModel[] {
  const models = (reported as { models?: unknown } | null | undefined)?.models;
  return Array.isArray(models)
    ? models.filter((m): m is ReportedModel => typeof m === 'object' && m !== null && typeof (m as { name?: unknown }).name === 'string')
    : [];
}

export function deployProblems(reported: unknown): DeployProblem[] {
  return reportedModels(reported)
    .filter((m): m is ReportedModel & { state: DeployProblem['state'] } => m.state === 'failed' || m.state === 'rolled_back')
    .map((m) => ({ model: m.name, version: String(m.version), state: m.state, reason: typeof m.reason === 'string' && m.reason ? m.reason : 'no reason given' }));
}

/** One line: `digits@1.1.0 failed: package is not signed ...; other@2 rolled_back: ...`. */
export function problemsText(problems: DeployProblem[]): string {
  return problems.map((p) => `${p.model}@${p.version} ${p.state}: ${p.reason}`).join('; ');
}
