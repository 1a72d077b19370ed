// Agent releases in the desired state (docs/self-update.md): a release is published and rolled
// out like a model, under the name edge-agent-linux-<arch> (one artifact per architecture),
// with the release's version. A device takes the entry for its own architecture; the one for
// another is refused with the reason.
export const AGENT_RELEASE_PREFIX = 'edge-agent-linux-';

/** The desired-state name of the agent release for an architecture (process.arch: x64, arm64). */
export function agentReleaseName(arch: string): string {
  return `${AGENT_RELEASE_PREFIX}${arch}`;
}

/** The architecture of an agent release entry, or undefined when the name is a model's. */
export function agentReleaseArch(name: string): string | undefined {
  return name.startsWith(AGENT_RELEASE_PREFIX) ? name.slice(AGENT_RELEASE_PREFIX.length) : undefined;
}
